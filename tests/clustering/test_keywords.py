import re
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from numpy.typing import NDArray

from clustering.keywords import (
    _NOISE_TOKEN_RE,
    _diverse,
    area_labels,
    clean_for_terms,
    count_texts,
    label_themes,
    stem,
    strip_placeholders,
    theme_keywords,
)

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


def test_label_themes_combines_a_phrase_label_and_keywords() -> None:
    labelled = label_themes(TEXTS, LABELS, {0: [1], 1: [4]}, top_n=5)
    assert set(labelled) == {0, 1}
    label, keywords = labelled[1]
    assert len(keywords) == 5 and "duplicate payment" in keywords
    assert label == "Refund duplicate payment"  # "refund [for a / the] duplicate payment"
    assert labelled[0][0] == "Card not arrived"


def test_two_levels_named_from_one_reading_of_the_texts_get_the_labels_of_two_readings() -> None:
    # A run reads the texts once for its leaves and its parents; each level's labels and
    # keywords must be what that level would get from a reading of its own.
    leaves = np.array([0, -1, 0, 1, 1, 1, -1])
    parents = np.array([0, 0, 0, 0, 0, 0, -1])  # the reading holds a text that no leaf does
    reps = {0: [0, 2], 1: [3, 4]}
    counted = count_texts(TEXTS, (leaves >= 0) | (parents >= 0))
    for labels in (leaves, parents):
        assert label_themes(TEXTS, labels, reps, counted=counted) == label_themes(TEXTS, labels, reps)


def test_a_reading_that_misses_a_labelled_text_is_not_used() -> None:
    # Read before the last text got its theme: using it would count that theme short.
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    counted = count_texts(TEXTS, np.array([True] * 6 + [False]))
    assert not counted.covers(labels)
    reps = {0: [0], 1: [3]}
    assert label_themes(TEXTS, labels, reps, counted=counted) == label_themes(TEXTS, labels, reps)


def test_label_keeps_the_negation_and_never_repeats_a_word() -> None:
    texts = ["my refund has not been received", "refund not received yet", "I haven't received the refund"]
    texts += ["refunds refunds refunds", "where is my refund"]
    label, _ = label_themes(texts, np.zeros(5, dtype=np.int64), {})[0]
    words = [stem(w) for w in label.lower().split()]
    assert "not" in words and "refund" in words and len(words) == len(set(words))
    assert 2 <= len(words) <= 5


def test_handles_urls_and_code_tokens_never_name_a_theme() -> None:
    texts = [
        "@AmazonHelp my package never came https://amzn.to/x1",
        "@AmazonHelp package never came, tracking says delivered",
        "NullPointerException at com.amazonaws.services.s3.AmazonS3Client.putObject(AmazonS3Client.java:42)",
        "S3 upload fails at org.junit.Assert with com.amazonaws.SdkClientException",
    ]
    assert clean_for_terms(texts[2]).split() == ["at"]  # camelCase and dotted names are code
    labelled = label_themes(texts, np.array([0, 0, 1, 1]), {})
    everything = " ".join(f"{label} {' '.join(keywords)}" for label, keywords in labelled.values()).lower()
    for token in ("amazonhelp", "amzn", "https", "amazonaws", "junit", "org", "com"):
        assert token not in everything.split()


# Words, spaces and every mark a noise token can turn on, so that near misses come up often.
_NOISY = st.lists(st.sampled_from([*"aZ9 _./\\:@w(<=;$#é", "://", "www.", "http", "<URL>"]), max_size=30).map("".join)


@given(_NOISY)
@example("see http:// now")  # each kind of noise token alone, in otherwise plain words
@example("go to www. now")
@example("ask @help")
@example("org_junit fails")
@example("the iPhone app")
@example("call f( here")
def test_the_quick_check_for_noise_never_keeps_a_token_the_full_pattern_drops(text: str) -> None:
    assert clean_for_terms(text) == _NOISE_TOKEN_RE.sub(" ", strip_placeholders(text))


def test_siblings_get_distinct_labels_and_other_groups_may_repeat() -> None:
    texts = ["card not arrived"] * 4 + ["card not arrived, where is it"] * 3 + ["refund please"] * 3
    labels = np.array([0] * 4 + [1] * 3 + [2] * 3)
    together = label_themes(texts, labels, {}, siblings={0: 0, 1: 0, 2: 1})
    assert together[0][0] != together[1][0]
    apart = label_themes(texts, labels, {}, siblings={0: 0, 1: 1, 2: 2})
    assert apart[0][0] == apart[1][0] == "Card not arrived"


def test_centrality_weights_choose_the_central_phrase() -> None:
    texts = ["lost card"] * 3 + ["stolen phone"] * 4
    labels = np.zeros(7, dtype=np.int64)
    # The "lost card" items sit on the centroid, the "stolen phone" ones far out on both sides.
    vectors = np.array([[1.0, 0.0]] * 3 + [[0.3, 1.0], [0.3, -1.0]] * 2, dtype=np.float32)
    assert label_themes(texts, labels, {})[0][0] == "Stolen phone"
    assert label_themes(texts, labels, {}, vectors=vectors)[0][0] == "Lost card"


def test_the_model_chooses_among_the_distinctive_phrases_the_one_closest_to_the_theme() -> None:
    # One paraphrase set repeats its narration in every item; what the items are about is the payment.
    texts = [
        "a couple weeks ago, there was a strange payment",
        "a couple weeks ago, I found a strange payment",
        "couple weeks ago, an unknown payment showed",
        "couple weeks ago: this odd payment",
        "my card was declined at the shop",
        "card declined online today",
    ]
    labels = np.array([0, 0, 0, 0, 1, 1])
    vectors = np.array([[1, 0, 0]] * 4 + [[0, 1, 0]] * 2, dtype=np.float32)
    about = {"strange": 0, "unknown": 0, "odd": 0, "payment": 0, "card": 1, "declined": 1}

    def embed(phrases: Sequence[str]) -> NDArray[np.float32]:  # a phrase means what its words mean
        out = np.zeros((len(phrases), 3), dtype=np.float32)
        for i, phrase in enumerate(phrases):
            for word in phrase.split():
                out[i, about.get(word, 2)] += 1
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    assert label_themes(texts, labels, {}, vectors=vectors)[0][0] == "Couple weeks ago"
    named = label_themes(texts, labels, {}, vectors=vectors, embed=embed)
    assert named[0][0] == "Strange payment" and named[1][0] == "Card declined"
    # keywords stay c-TF-IDF's, whatever the label
    assert named[0][1] == label_themes(texts, labels, {}, vectors=vectors)[0][1]


def test_theme_without_a_usable_word_falls_back_to_its_shortest_text() -> None:
    labelled = label_themes(["the and of", "it is", "xy"], np.array([0, 0, 1]), {0: [0, 1], 1: [2]})
    assert labelled[0] == ("It is", [])
    assert labelled[1] == ("Xy", ["xy"])
    assert label_themes(["hello"], np.array([-1]), {}) == {}


def test_texts_in_an_unknown_script_still_get_a_label() -> None:
    texts = ["ขอคืนเงิน ด่วน", "ขอคืนเงิน ครับ", "カードが 届かない", "カードが まだ 届かない", "!!! ???", "12345"]
    labelled = label_themes(texts, np.array([0, 0, 1, 1, 2, 2]), {2: [4, 5]})
    assert labelled[0][0] == "ขอคืนเงิน"
    assert labelled[1][0].startswith("カードが")
    assert labelled[2] == ("12345", [])


def test_plural_and_gerund_forms_share_a_stem() -> None:
    assert stem("meetings") == stem("meeting") == stem("meet")
    assert stem("cards") == stem("card")


def _written_in_order(label: str, texts: list[str]) -> bool:
    """The label's words stand in this order in one of the texts."""
    pattern = r"\b" + r"\b.*\b".join(re.escape(w) for w in label.lower().split()) + r"\b"
    return any(re.search(pattern, text.lower()) for text in texts)


@pytest.mark.parametrize(
    "texts",
    [
        # One strong word ("blue") and a phrase it never stands with ("sky colour").
        ["blue", "blue please", "blue!", "what is the sky colour", "sky colour today"],
        # "plus" and "divided" are two different sums; no item says "plus divided".
        ["two plus two", "three plus four", "plus", "ten divided by two", "six divided by three"],
    ],
)
def test_a_label_is_a_phrase_the_items_write(texts: list[str]) -> None:
    label, _ = label_themes(texts, np.zeros(len(texts), dtype=np.int64), {})[0]
    assert _written_in_order(label, texts), label


def test_a_phrase_never_spans_a_sentence_or_a_clause() -> None:
    texts = ["Got my new card. Payment declined", "Thanks for the card! Payment declined again"]
    texts += ["I topped up my card but payment declined", "card ok, payment declined"]
    assert label_themes(texts, np.zeros(4, dtype=np.int64), {})[0][0] == "Payment declined"


def test_phrasal_verbs_keep_their_particle() -> None:
    texts = ["my top up failed", "Top up failed again", "why has my top-up failed", "top up card"]
    texts += ["the transfer failed", "card transfer failed"]
    labelled = label_themes(texts, np.array([0, 0, 0, 0, 1, 1]), {})
    assert labelled[0][0] == "Top up failed"
    assert "top" in labelled[0][1]  # "top" is a content word for keywords too


def test_negations_written_without_an_apostrophe_are_negations() -> None:
    texts = ["my card isnt working", "card doesnt working?", "why is my card not working", "card isn’t working"]
    label, _ = label_themes(texts, np.zeros(4, dtype=np.int64), {})[0]
    assert label == "Card not working"


def test_acronyms_keep_the_capitals_the_items_use() -> None:
    texts = ["How do I change my PIN", "change PIN please", "can I change my pin at an ATM"]
    assert label_themes(texts, np.zeros(3, dtype=np.int64), {})[0][0] == "Change PIN"


def test_alternatives_say_something_else() -> None:
    # The runner-up repeats the best option's words; a diverse second option is preferred.
    options = {"card not arrived": 1.0, "card arrived": 0.9, "delivery late": 0.8}
    assert _diverse(options, 2) == ["card not arrived", "delivery late"]


def test_inflected_forms_share_a_stem_and_short_words_stay_apart() -> None:
    assert stem("charge") == stem("charges") == stem("charged") == stem("charging")
    assert stem("cancelled") == stem("canceled") == stem("cancel") == stem("cancels")
    assert stem("verify") == stem("verified") == stem("verifying")
    assert stem("topped") == stem("top") and stem("rated") == stem("rate") == stem("rates")
    assert stem("declined") == stem("decline") and stem("transferred") == stem("transfer")
    assert stem("rate") != stem("rat") and stem("care") != stem("car") and stem("hope") != stem("hop")
    assert stem("status") == "status" and stem("address") == stem("addresses")


def test_a_word_most_items_share_leads_when_no_phrase_comes_near_it() -> None:
    texts = ["recipe please", "recipe for soup", "a recipe", "recipe?", "the recipe", "recipe for cake"]
    texts += ["recipe pasta", "recipe now", "recipe again", "new recipe", "recipe ideas", "recipe ideas today"]
    texts += ["baked chicken tonight", "baked chicken"]
    # "baked chicken" is as frequent as "recipe ideas" and first alphabetically, but "recipe"
    # is in twelve of the fourteen items.
    assert label_themes(texts, np.zeros(14, dtype=np.int64), {})[0][0] == "Recipe ideas"


def test_a_phrase_keeps_its_particle_and_numbers_keep_words_apart() -> None:
    texts = ["european bank card top up", "european bank card top up fee", "what is 5 plus 3", "7 plus 2"]
    texts += ["answer to 12 345 678 plus", "the answer 99 999 999 plus"]
    labelled = label_themes(texts, np.array([0, 0, 1, 1, 1, 1]), {})
    assert "top" not in labelled[0][0].lower().split()[-1:]  # never "European bank card top"
    assert labelled[1][0] != "Answer plus"


def test_a_parent_is_named_after_the_phrase_its_leaves_share() -> None:
    leaves = {
        0: [("Top up failed", 90), ("Top up limit", 50), ("Auto top up option", 30), ("Apple pay", 20)],
        1: [("Lost card", 60), ("Activate card", 40), ("Cards arrival", 30)],
        2: [("Unblock PIN", 40), ("Change PIN", 30), ("Cash ATM", 30)],
        3: [("Verify identity", 70), ("Delete account", 20)],
        4: [("Refund not received", 25)],
    }
    own = {0: "Top up failed", 1: "Lost card", 2: "Change PIN", 3: "Verify identity", 4: "Refund not received"}
    sizes = {p: sum(size for _, size in under) for p, under in leaves.items()}
    assert area_labels(leaves, own, sizes) == {
        0: "Top up",  # the longest phrase that three of four leaves share
        1: "Card",  # compared by stem: "cards" is "card"
        2: "PIN",  # the leaves' capitals kept
        3: "Verify identity",  # nothing shared: the parent's own phrase
        4: "Refund not received",  # one leaf: its own phrase
    }


def test_parent_labels_are_unique_the_larger_parent_choosing_first() -> None:
    leaves = {
        0: [("Card payment declined", 10), ("Card payment pending", 10)],
        1: [("Card payment fee", 90), ("Card payment wrong rate", 90)],
        2: [("Payment fee", 5), ("Wrong rate", 5)],
    }
    own = {0: "Declined payment", 1: "Payment fee", 2: "Card payments"}
    labels = area_labels(leaves, own, {0: 20, 1: 180, 2: 10})
    # The larger parent takes "Card payment"; the next takes its next shared phrase; the
    # smallest shares none and its own phrase is taken, so it is told apart by its number.
    assert labels == {1: "Card payment", 0: "Card", 2: "Card payments (2)"}
