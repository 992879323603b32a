import pytest

from qa.spans import candidates_for, coordinated_people, date_normalized, find_clauses, find_dates, find_durations, find_names, find_numbers, known_places


def texts(sentence, candidates):
    return [sentence[c.start:c.end] for c in candidates]


@pytest.mark.parametrize("text, value", [
    ("28 Maret 2024", {"type": "date", "value": "2024-03-28"}),
    ("Juni 1950", {"type": "date", "value": "1950-06"}),
    ("March 5, 2021", {"type": "date", "value": "2021-03-05"}),
    ("tahun 1994", {"type": "date", "value": "1994"}),
    ("pertengahan tahun 1950-an", {"type": "decade", "value": "1950s"}),
    ("1950-1953", {"type": "date_range", "value": "1950/1953"}),
    ("19 Juni", None),
])
def test_dates_are_normalised_to_the_precision_the_text_gives(text, value):
    assert date_normalized(text) == value


def test_dates_are_found_with_offsets():
    sentence = "Pasukan itu menyerang pada bulan Juni 1950, dan gencatan senjata 27 Juli 1953 (Senin) mengakhirinya."
    assert texts(sentence, find_dates(sentence)) == ["Juni 1950", "27 Juli 1953"]


def test_numbers_keep_separators_ranges_units_and_the_counted_noun():
    sentence = "Mereka membahas 20.000 hingga 50.000 pekerja, menghapus 90% utang senilai $11 miliar, dan 30 kuda."
    found = texts(sentence, find_numbers(sentence))
    assert "20.000 hingga 50.000 pekerja" in found
    assert any(f.startswith("90%") for f in found)
    assert "$11 miliar" in found
    assert "30 kuda" in found


def test_durations_need_a_time_unit():
    sentence = "Pembicaraan berlangsung selama dua jam, bersama 30 pejabat."
    assert texts(sentence, find_durations(sentence)) == ["dua jam"]


def test_names_drop_titles_and_leading_places():
    places = known_places(["Dia pergi ke Rusia dan ke Korea Utara."])
    sentence = "Delegasi dipimpin oleh Menteri Pertahanan Rusia Sergei Shoigu ke Korea Utara pada Juli 2023."
    found = {sentence[c.start:c.end]: c.kind for c in find_names(sentence, places)}
    assert found["Sergei Shoigu"] == "person"
    assert found["Korea Utara"] == "place"
    assert "Juli" not in found


def test_an_elaboration_after_a_comma_stays_in_the_clause_it_spells_out():
    sentence = "Pedagang membawa hasil bumi, termasuk kopi robusta, ke pasar; warga menyambutnya."
    clauses = [sentence[c.start:c.end] for c in find_clauses(sentence)]
    assert clauses == ["Pedagang membawa hasil bumi, termasuk kopi robusta", "ke pasar", "warga menyambutnya"]


@pytest.mark.parametrize("sentence, people", [
    ("Mumi itu ditemukan oleh Helmut dan Erica Simon pada tahun 1991.", "Helmut dan Erica Simon"),
    ("Film itu disutradarai oleh Les Clark, Eric Larson, dan Wolfgang Reitherman.",
     "Les Clark, Eric Larson, dan Wolfgang Reitherman"),
    ("Film pertama disutradarai Jose Poernomo serta Rizal Mantovani.", "Jose Poernomo serta Rizal Mantovani"),
])
def test_people_joined_by_and_are_also_one_candidate(sentence, people):
    found = [sentence[c.start:c.end] for c in candidates_for("person", sentence)]
    assert people in found


@pytest.mark.parametrize("sentence", [
    "Kantor pusat perusahaan itu berada di Surabaya, Jawa Timur.",  # commas alone: a place and its province
    "Delegasi itu singgah di Vladivostok dan Khabarovsk.",  # places, not people
])
def test_names_not_joined_by_a_final_and_or_not_people_are_no_list(sentence):
    names = find_names(sentence, frozenset({"Vladivostok", "Khabarovsk", "Surabaya"}))
    assert coordinated_people(sentence, names) == []
