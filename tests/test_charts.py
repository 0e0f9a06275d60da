"""The dashboard's chart coordinates: scaled to the data, safe when empty."""

from django.template.loader import render_to_string

from annotate.charts import LABEL_W, VALUE_W, WIDTH, Bar, column_chart, hbar_chart

INNER = WIDTH - LABEL_W - VALUE_W


def test_bars_are_as_long_as_their_values_on_one_scale():
    chart = hbar_chart([Bar("ann", 2), Bar("ben", 4)], title="Labels")
    first, second = chart["bars"]
    assert first["x"] == second["x"] == LABEL_W
    assert second["w"] == INNER and first["w"] == round(INNER / 2, 1)
    assert second["y"] > first["y"]
    assert [t["text"] for t in chart["ticks"]] == ["0", "4"]


def test_a_whisker_spans_the_interval_on_the_same_scale_as_the_bar():
    chart = hbar_chart([Bar("ann", 0.5, low=0.25, high=0.75)], title="Gold", hi=1.0)
    bar = chart["bars"][0]
    assert bar["w"] == round(INNER / 2, 1)
    assert (bar["whisker"]["x1"], bar["whisker"]["x2"]) == (round(LABEL_W + INNER / 4, 1), round(LABEL_W + INNER * 3 / 4, 1))


def test_a_negative_value_points_left_of_zero():
    chart = hbar_chart([Bar("κ", -0.5), Bar("raw", 1.0)], title="Agreement", hi=1.0)
    negative, positive = chart["bars"]
    zero = LABEL_W + INNER / 3
    assert chart["axis"]["origin"] == round(zero, 1)
    assert negative["x"] == LABEL_W and negative["x"] + negative["w"] == round(zero, 1)
    assert positive["x"] == round(zero, 1)
    assert [t["text"] for t in chart["ticks"]] == ["-0.5", "0", "1"]


def test_columns_rise_with_their_counts_from_the_bottom():
    chart = column_chart([("Nov 1", 0), ("Nov 2", 3), ("Nov 3", 6)], title="Per day")
    empty, half, full = chart["columns"]
    assert empty["h"] == 0 and full["h"] == 2 * half["h"]
    assert full["y"] + full["h"] == chart["bottom"] == half["y"] + half["h"]
    assert full["y"] == chart["top"]
    assert [t["text"] for t in chart["ticks"]] == ["Nov 1", "Nov 2", "Nov 3"]


def test_empty_data_says_no_data_yet_instead_of_drawing():
    assert hbar_chart([], title="Gold")["empty"]
    assert column_chart([("Nov 1", 0)], title="Per day")["empty"]
    html = render_to_string("annotate/charts/_hbar.html", {"chart": hbar_chart([], title="Gold"), "id": "g"})
    assert "No data yet." in html and "<svg" not in html


def test_labels_are_escaped_in_the_svg_and_its_numbers():
    chart = hbar_chart([Bar("<script>x</script>", 1)], title="Labels <b>")
    html = render_to_string("annotate/charts/_hbar.html", {"chart": chart, "id": "a"})
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;: 1" in html
