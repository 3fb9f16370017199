-- What a run clustered (items, their vectors' content hashes, model and parameters), so a run over
-- unchanged input can reuse the previous result instead of moving items for nothing.
ALTER TABLE clustering_run ADD COLUMN input_digest bytea;
