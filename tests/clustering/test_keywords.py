import numpy as np

from clustering.keywords import label_themes, theme_keywords, theme_label

TEXTS = [
    "My card has not arrived yet, write to <EMAIL>",
    "The card still hasn't arrived after two weeks",
    "When will my new card arrive? Call <PHONE>",
    "I want a refund for a duplicate payment",
    "Refund the duplicate payment on <CARD> please",
    "How do I get a refund for a payment charged twice",
    "asdf qwerty",
]
LABELS = np.array([0, 0, 0, 1, 1, 1, -1])


def test_keywords_describe_each_theme() -> None:
    keywords = theme_keywords(TEXTS, LABELS, top_n=5)
    assert set(keywords) == {0, 1}
    assert keywords[0][0] == "card"
    assert "refund" in keywords[1][:3]
    assert "duplicate payment" in keywords[1]


def test_keywords_drop_stop_words_placeholders_and_noise() -> None:
    keywords = theme_keywords(TEXTS, LABELS, top_n=50)
    words = {word for terms in keywords.values() for term in terms for word in term.split()}
    assert not words & {"my", "the", "has", "not", "at", "for", "please"}
    assert not words & {"email", "phone", "<email>"}
    assert "refund" not in keywords[0] and "card" not in keywords[1]
    assert "asdf" not in words


def test_keywords_are_deterministic_with_ties_broken_alphabetically() -> None:
    texts = ["zebra apple", "apple zebra"]
    assert theme_keywords(texts, np.array([0, 0]), top_n=2) == {0: ["apple", "zebra"]}


def test_no_usable_words_gives_no_keywords() -> None:
    assert theme_keywords(["the and of", "<URL>"], np.array([0, 1])) == {}
    assert theme_keywords(["hello"], np.array([-1])) == {}


def test_label_leads_with_a_bigram_and_adds_new_words_only() -> None:
    label = theme_label(["refund", "duplicate payment", "payment", "duplicate", "charged", "twice"])
    assert label == "duplicate payment, refund, charged"


def test_label_falls_back_to_the_shortest_representative_text() -> None:
    assert theme_label([], ["A long question about cards", "Lost <CARD>"]) == "Lost"
    assert theme_label([], []) == "unlabelled theme"


def test_label_themes_combines_keywords_and_labels() -> None:
    labelled = label_themes(TEXTS, LABELS, {0: [1], 1: [4]}, top_n=5)
    assert set(labelled) == {0, 1}
    label, keywords = labelled[1]
    assert len(keywords) == 5 and label.startswith("duplicate payment")
