"""Follow-up questions: which earlier words a question is read with (pure string work, no model)."""

from qa.followup import EarlierTurn, names, resolve

ARRIVAL = EarlierTurn("When did Putin arrive in Pyongyang in 2024?", "19 Juni 2024")
TREATY = EarlierTurn("What did he and Kim sign there?", "perjanjian kemitraan strategis yang komprehensif")


def test_names_skip_the_question_word_that_opens_a_question():
    assert names("Siapa Duta Besar Rusia untuk Korea Utara?") == ["Duta Besar Rusia", "Korea Utara"]
    assert names("When did Putin arrive in Pyongyang?") == ["Putin", "Pyongyang"]
    assert names("Who is Kim Jong Un's wife?") == ["Kim Jong Un"]
    assert names("Putin visited when?") == ["Putin"]


def test_without_history_a_question_is_asked_as_typed():
    resolved = resolve("What did he and Kim sign there?", [])
    assert (resolved.query, resolved.context_used) == ("What did he and Kim sign there?", [])


def test_a_pronoun_brings_the_names_of_the_turn_before():
    resolved = resolve("What did he and Kim sign there?", [ARRIVAL])
    assert resolved.context_used == ["Putin", "Pyongyang"]
    assert resolved.query == "What did he and Kim sign there? Putin Pyongyang"


def test_a_third_turn_reaches_back_to_the_first():
    resolved = resolve("Kapan dia terakhir ke sana sebelumnya?", [ARRIVAL, TREATY])
    assert resolved.context_used == ["Kim", "Putin", "Pyongyang"]


def test_an_earlier_answer_that_is_a_name_is_carried():
    resolved = resolve("Kapan dia tiba di Pyongyang?",
                       [EarlierTurn("Siapa yang memimpin delegasi Rusia?", "Sergei Shoigu")])
    assert resolved.context_used[0] == "Sergei Shoigu"


def test_an_earlier_date_is_carried_only_when_the_question_points_at_a_time():
    earlier = [EarlierTurn("When did Putin first visit Pyongyang?", "Juli 2000")]
    assert "Juli 2000" in resolve("Who led North Korea then?", earlier).context_used
    assert "Juli 2000" not in resolve("Who did he meet there?", earlier).context_used


def test_a_self_contained_question_is_not_dragged_back_to_the_earlier_topic():
    resolved = resolve("Siapa Duta Besar Rusia untuk Korea Utara?", [ARRIVAL, TREATY])
    assert (resolved.query, resolved.context_used) == ("Siapa Duta Besar Rusia untuk Korea Utara?", [])


def test_an_elliptical_year_repeats_the_previous_question_with_it():
    resolved = resolve("And in 2000?", [ARRIVAL])
    assert resolved.query == "When did Putin arrive in Pyongyang in 2000?"
    assert resolved.context_used == ["Putin", "Pyongyang"]


def test_an_elliptical_name_takes_the_place_of_the_previous_subject():
    resolved = resolve("Bagaimana dengan Lavrov?", [EarlierTurn("Kapan Shoigu mengunjungi Pyongyang?", "Juli 2023")])
    assert resolved.query == "Kapan Lavrov mengunjungi Pyongyang?"
    assert resolved.context_used == ["Pyongyang"]


def test_a_follow_up_of_a_follow_up_keeps_what_the_earlier_one_leaned_on():
    resolved = resolve("And in 2019?", [ARRIVAL, TREATY])
    assert resolved.query == "What did he and Kim sign there? in 2019 Putin Pyongyang"
    assert resolved.context_used == ["Kim", "Putin", "Pyongyang"]  # every earlier word the query holds


def test_a_question_in_a_script_without_spaces_is_not_taken_for_a_fragment():
    resolved = resolve("普京什么时候访问平壤？", [ARRIVAL])
    assert (resolved.query, resolved.context_used) == ("普京什么时候访问平壤？", [])
    assert resolve("Lavrov?", [ARRIVAL]).context_used  # a short follow-up still is one


def test_a_run_of_capitalised_words_too_long_for_a_name_is_not_carried():
    earlier = [EarlierTurn("Apa kata " + "Sangat " * 30 + "Panjang dan Putin?", None)]
    assert resolve("Apa yang dia katakan?", earlier).context_used == ["Putin"]


def test_a_connective_before_a_question_of_its_own_does_not_make_it_a_fragment():
    resolved = resolve("And who did he meet there?", [ARRIVAL])
    assert resolved.query == "And who did he meet there? Putin Pyongyang"  # its references still lean
    resolved = resolve("Lalu apa yang ditandatangani?", [ARRIVAL])
    assert (resolved.query, resolved.context_used) == ("Lalu apa yang ditandatangani?", [])


def test_connectives_in_a_row_are_all_set_aside():
    assert resolve("And what about 2019?", [ARRIVAL]).query == "When did Putin arrive in Pyongyang in 2019?"


def test_a_fragment_opening_with_a_preposition_is_a_follow_up():
    assert resolve("In 2000?", [ARRIVAL]).query == "When did Putin arrive in Pyongyang in 2000?"
    assert resolve("Di tahun 2000?", [ARRIVAL]).query == "When did Putin arrive in Pyongyang in 2000?"


def test_a_new_year_replaces_the_year_only_when_the_previous_question_has_one():
    resolved = resolve("And in 2024?", [EarlierTurn("What happened between 2019 and 2023?", None)])
    assert resolved.query == "What happened between 2019 and 2023? in 2024"


def test_a_short_reply_without_a_year_or_a_name_is_not_a_follow_up():
    for said in ["ok thanks", "hello", "asdfghjkl", "Ok thanks", "Thanks!", "OK", "Yes", "Terima kasih", "Sekarang?"]:
        resolved = resolve(said, [ARRIVAL])
        assert (resolved.query, resolved.context_used) == (said, [])
    assert resolve("And the treaty?", [ARRIVAL]).query.startswith(ARRIVAL.question)  # a connective says it is one


def test_a_place_after_a_preposition_takes_the_place_of_the_earlier_place_not_of_the_subject():
    assert resolve("In Moscow?", [ARRIVAL]).query == "When did Putin arrive in Moscow in 2024?"
    assert resolve("Di Vladivostok?", [ARRIVAL]).query == "When did Putin arrive in Vladivostok in 2024?"


def test_a_fragment_after_a_fragment_rewrites_the_question_the_first_one_spelled_out():
    after = [ARRIVAL, EarlierTurn("In 2019?", None)]
    assert resolve("And in 2000?", after).query == "When did Putin arrive in Pyongyang in 2000?"
    resolved = resolve("Lavrov?", after)
    assert resolved.query == "When did Lavrov arrive in Pyongyang in 2019?"  # Putin is not carried back in
    assert resolved.context_used == ["Pyongyang"]


def test_an_earlier_turn_without_words_is_none_to_lean_on():
    # The service does not search "?!" or "🙂"; "Putin?" after it is a question of its own, not a fragment of it.
    for empty in ("?!", "🙂", "  ...  "):
        resolved = resolve("Putin?", [EarlierTurn(empty, None)])
        assert (resolved.query, resolved.context_used) == ("Putin?", [])
    # ... and the turns before it are still there: "And in 2000?" leans on the arrival, not on "?".
    resolved = resolve("And in 2000?", [ARRIVAL, EarlierTurn("?", None)])
    assert resolved.query == "When did Putin arrive in Pyongyang in 2000?"
