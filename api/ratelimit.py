"""Per-key rate limits: a fixed one-minute window counted in Redis, shared by every API process."""

from __future__ import annotations

import logging
import time

from redis.asyncio import Redis as AsyncRedis
from redis.exceptions import RedisError

from api.auth import Principal
from api.errors import RateLimited

log = logging.getLogger(__name__)


async def check_rate_limit(redis: AsyncRedis, principal: Principal, limit_per_minute: int) -> None:
    """Raise RateLimited (429 + Retry-After) past the key's budget for this minute.

    Fails open: a Redis outage must not stop ingestion, which only needs Postgres.
    """
    if limit_per_minute <= 0:
        return
    now = time.time()
    window = int(now // 60)
    key = f"ratelimit:{principal.api_key_id or 'bootstrap'}:{window}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, 61)
            count, _ = await pipe.execute()
    except (RedisError, OSError, RuntimeError) as exc:
        # RuntimeError: under uvloop, redis-py writing on a pooled connection that Redis or the
        # network reset raises "unable to perform operation on <TCPTransport closed=True>".
        log.warning("rate limit not checked: redis unavailable (%s)", type(exc).__name__)
        return
    if int(count) > limit_per_minute:
        retry_after = max(1, int(60 - now % 60))
        raise RateLimited(f"More than {limit_per_minute} requests this minute for this key", retry_after)
