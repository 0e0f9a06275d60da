"""The dashboard's chart coordinates: scaled to the data, safe when empty."""

from django.template.loader import render_to_string

from annotate.charts import LABEL_W, LINE_H, LINE_MARGIN, LINE_W, VALUE_W, WIDTH, Bar, Point, column_chart, hbar_chart, line_chart

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
    assert line_chart([], title="Accuracy", y_floor=0.5, x_unit="labels")["empty"]
    html = render_to_string("annotate/charts/_hbar.html", {"chart": hbar_chart([], title="Gold"), "id": "g"})
    assert "No data yet." in html and "<svg" not in html


def test_labels_are_escaped_in_the_svg_and_its_numbers():
    chart = hbar_chart([Bar("<script>x</script>", 1)], title="Labels <b>")
    html = render_to_string("annotate/charts/_hbar.html", {"chart": chart, "id": "a"})
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;: 1" in html


def test_a_line_runs_from_zero_to_the_largest_x_over_its_interval_band():
    points = [Point(10, 0.75, "first", low=0.5, high=1.0), Point(20, 1.0, "second")]
    chart = line_chart(points, title="Accuracy", y_floor=0.5, x_unit="labels")
    left, right, top, bottom = LINE_MARGIN, LINE_W - LINE_MARGIN, LINE_MARGIN, LINE_H - LINE_MARGIN
    middle = (left + right) / 2
    assert chart["line"] == f"{middle},{(top + bottom) / 2} {right}.0,{top}.0"
    # The upper ends left to right, then the lower ends back; a point without an interval is its own end.
    assert chart["band"] == f"{middle},{top}.0 {right}.0,{top}.0 {right}.0,{top}.0 {middle},{bottom}.0"
    assert [p["text"] for p in chart["points"]] == ["first", "second"]
    assert (chart["y_min"], chart["x_text"]) == (0.5, "20 labels")


def test_an_interval_below_the_floor_lowers_the_y_axis():
    chart = line_chart([Point(5, 0.5, "under", low=0.25, high=0.75)], title="Accuracy", y_floor=0.5, x_unit="labels")
    assert chart["y_min"] == 0.25
    assert chart["points"][0]["y"] == round(LINE_MARGIN + (LINE_H - 2 * LINE_MARGIN) * (1 - 0.25 / 0.75), 1)


def test_a_line_s_tooltips_are_escaped():
    chart = line_chart([Point(1, 0.9, "<b>x</b>")], title="Accuracy <i>", y_floor=0.5, x_unit="labels")
    html = render_to_string("annotate/charts/_line.html", {"chart": chart, "id": "acc"})
    assert "<b>" not in html and "<i>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'aria-labelledby="acc-title"' in html and '<title id="acc-title">Accuracy &lt;i&gt;</title>' in html
