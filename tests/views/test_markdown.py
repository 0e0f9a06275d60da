"""The `markdown` template filter: model output rendered, and never able to run anything."""

import pytest
from django.template import Context, Template

from annotate.templatetags.markdown import excerpt_filter, render_markdown


def render(text: str) -> str:
    return Template("{% load markdown %}{{ text|markdown }}").render(Context({"text": text}))


def test_code_blocks_lists_and_tables_render():
    html = render("Steps:\n1. one\n2. two\n\n```python\nprint('<b>')\n```\n\n| a | b |\n|:--|--:|\n| 1 | 2 |")
    assert "<ol>\n<li>one</li>\n<li>two</li>\n</ol>" in html
    assert "<pre><code>print('&lt;b&gt;')\n</code></pre>" in html
    assert '<th align="left">a</th>' in html and '<td align="right">2</td>' in html
    assert "style=" not in html  # the Content-Security-Policy refuses style attributes


def test_a_list_right_after_a_paragraph_line_is_still_a_list():
    assert render("Here:\n- a\n- b") == "<p>Here:</p>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>"


def test_single_line_breaks_are_kept():
    assert render("roses\nviolets") == "<p>roses<br>\nviolets</p>"


@pytest.mark.parametrize(
    ("hostile", "shown"),
    [
        ("<script>window.__pwned=1</script>", "&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
        ('<img src=x onerror="window.__pwned=1">', '&lt;img src=x onerror="window.__pwned=1"&gt;'),
        ("<iframe src=https://evil.example></iframe>", "&lt;iframe src=https://evil.example&gt;&lt;/iframe&gt;"),
        ("<style>body{display:none}</style>", "&lt;style&gt;body{display:none}&lt;/style&gt;"),
        ('<a href="https://x" onclick="steal()">x</a>', '&lt;a href="https://x" onclick="steal()"&gt;x&lt;/a&gt;'),
        ("<div>\n<script>alert(1)</script>\n</div>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ],
)
def test_raw_html_in_model_output_shows_as_text(hostile, shown):
    html = render(hostile)
    assert shown in html
    for tag in ("<script", "<img", "<iframe", "<style", "<div", "<a "):
        assert tag not in html


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:window.__pwned=1)",
        "[x](JaVaScRiPt:alert(1))",
        "[x](java&#115;cript:alert(1))",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](vbscript:msgbox)",
        "[x](/admin/)",
    ],
)
def test_links_other_than_http_https_and_mailto_lose_their_address(link):
    html = render(link)
    assert "href" not in html
    assert ">x</a>" in html


def test_safe_links_keep_their_address_and_never_pass_on_the_page():
    html = render("[docs](https://example.com/a?b=1) <mailto:someone@example.com>")
    assert '<a href="https://example.com/a?b=1" target="_blank" rel="noopener noreferrer nofollow">docs</a>' in html
    assert 'href="mailto:someone@example.com"' in html


def test_an_image_becomes_a_link_and_loads_nothing():
    html = render('![a chart](https://tracker.example/pixel.png "t")')
    assert "<img" not in html
    assert 'href="https://tracker.example/pixel.png" target="_blank" rel="noopener noreferrer nofollow">' in html
    assert ">[image: a chart]</a>" in html


def test_html_comments_and_entities_stay_inert():
    html = render("<!-- <script>x</script> --> &lt;b&gt; &amp;")
    assert "<!--" not in html and "<script" not in html
    assert "&amp;lt;b&amp;gt;" not in html  # an entity the model wrote shows as the character it names


def test_none_renders_as_nothing():
    assert render_markdown(None) == ""


def test_an_excerpt_is_the_plain_words_cut_short():
    assert excerpt_filter("A **bold** <script>x</script>\n\n- item", 100) == "A bold <script>x</script> item"
    assert excerpt_filter("word " * 50, 20) == "word word word word…"
