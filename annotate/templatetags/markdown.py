"""`{{ text|markdown }}`: model output and guidelines as markdown, rendered then sanitised.

Model outputs are hostile input. Raw HTML in the source is never interpreted: python-markdown's
HTML passes are switched off, so `<script>` shows as the text `<script>`. The rendered HTML then
goes through nh3 with a short allow-list (no script, style, iframe, img, event handlers, or
links other than http, https and mailto, which open in a new tab), so a bug in the first step
cannot become an injection. Images become plain links: an image from a model's output would fetch any URL it names.
"""

from __future__ import annotations

import html
import re
import xml.etree.ElementTree as etree

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe
from markdown.extensions import Extension
from markdown.preprocessors import Preprocessor
from markdown.treeprocessors import Treeprocessor

register = template.Library()

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "kbd", "li", "ol", "p", "pre", "s", "strong", "sub", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "abbr": {"title"}, "ol": {"start"}}
# Table columns are aligned with the align attribute: a style attribute would break the CSP.
ALIGNMENTS = {"left", "center", "right"}
CELL_ALIGNMENTS = {"th": {"align": ALIGNMENTS}, "td": {"align": ALIGNMENTS}}
SAFE_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"
LIST_ITEM = re.compile(r"^ {0,3}(?:[-*+]|\d{1,9}[.)])[ \t]+\S")


def keep_attribute(tag: str, attribute: str, value: str) -> str | None:
    """Links only to absolute http(s) or mailto addresses; no relative URLs into this site."""
    if tag == "a" and attribute == "href":
        scheme = value.split(":", 1)[0].strip().lower() if ":" in value else ""
        return value if scheme in SAFE_SCHEMES else None
    return value


class ListSpacing(Preprocessor):
    """Give a list that follows a paragraph line the blank line markdown wants before it.

    Models write "Steps:\\n1. a\\n2. b" far more often than with the blank line; without it
    python-markdown shows the items as one run-on paragraph. Fenced code is stashed by then.
    """

    def run(self, lines: list[str]) -> list[str]:
        out: list[str] = []
        in_list = False
        for line in lines:
            if not line.strip():
                in_list = False
            elif LIST_ITEM.match(line):
                if not in_list and out and out[-1].strip():
                    out.append("")
                in_list = True
            out.append(line)
        return out


class ImagesAsLinks(Treeprocessor):
    """`![alt](url)` becomes a link with the alt text, so no image loads without a click."""

    def run(self, root: etree.Element) -> None:
        for image in root.iter("img"):
            image.tag = "a"
            image.text = f"[image: {image.get('alt') or image.get('src', '')}]"
            href = image.get("src", "")
            image.attrib.clear()
            image.set("href", href)


class ModelOutputExtension(Extension):
    def extendMarkdown(self, md: markdown_lib.Markdown) -> None:  # noqa: N802  (python-markdown's API name)
        md.preprocessors.deregister("html_block")
        md.inlinePatterns.deregister("html")
        md.preprocessors.register(ListSpacing(md), "list_spacing", 15)
        md.treeprocessors.register(ImagesAsLinks(md), "images_as_links", 5)


def render_markdown(text: str) -> str:
    """Markdown to sanitised HTML (a plain str; the filter marks it safe)."""
    md = markdown_lib.Markdown(
        extensions=["fenced_code", "tables", "sane_lists", "nl2br", ModelOutputExtension()],
        extension_configs={"tables": {"use_align_attribute": True}},
        output_format="html",
    )
    html = md.convert(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
        attributes=ALLOWED_ATTRIBUTES,
        tag_attribute_values=CELL_ALIGNMENTS,
        attribute_filter=keep_attribute,
        url_schemes=SAFE_SCHEMES,
        link_rel=LINK_REL,
        # A new tab: following a link must not take the annotator away from a half-done answer.
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
    )


@register.filter(name="markdown", is_safe=True)
def markdown_filter(value) -> SafeString:
    return mark_safe(render_markdown("" if value is None else str(value)))  # noqa: S308  (sanitised by nh3 above)


@register.filter(name="excerpt")
def excerpt_filter(value, length: int = 90) -> str:
    """The words of a markdown text on one line, without its markup, cut to `length` characters.

    Returns plain text, which the template escapes like any other value.
    """
    text = nh3.clean(render_markdown("" if value is None else str(value)), tags=set())
    text = " ".join(html.unescape(text).split())
    length = int(length)
    return text if len(text) <= length else text[: length - 1].rstrip() + "…"
