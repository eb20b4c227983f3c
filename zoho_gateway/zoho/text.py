"""Pure conversions between Zoho's HTML fields (descriptions, notes, resolutions) and plain text.

Reading: :func:`plain_text` turns what Zoho stores into readable plain text, with no markup left: scripts,
styles and other non-content elements are dropped with their content, line breaks and blocks become new
lines, list items get a dash, a link keeps its address. It parses with Beautiful Soup over the standard
library's ``html.parser``: lenient with the broken HTML that mail clients produce, MIT-licensed, maintained
for two decades, pure Python (no C parser to build). Sanitisers (bleach, nh3) answer HTML, not text;
html2text answers Markdown and is GPL-licensed.

The result is text: a ``<`` in it is a character the ticket holds (Zoho's ``&lt;``), to be shown as text,
never inserted into a page as HTML.

Writing: :func:`for_html_field` leaves text as it is unless it would read as HTML (a tag or a ``&name;``
in it), and then escapes it, so that what a client wrote reads back unchanged. (The seed's create sends
its description as given, always.)
"""

from __future__ import annotations

import html
import re

from bs4 import BeautifulSoup, CData, Comment, Declaration, Doctype, ProcessingInstruction, Tag
from bs4.element import NavigableString, PageElement

#: Elements whose content is not text for people (code, styling, embedded objects, document metadata).
DROPPED = frozenset(
    {
        "script",
        "style",
        "head",
        "title",
        "meta",
        "link",
        "template",
        "noscript",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "canvas",
        "audio",
        "video",
        "select",
        "button",
        "input",
        "textarea",
    }
)

#: Elements that start on a new line and end one.
BLOCKS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "summary",
        "table",
        "tr",
        "ul",
    }
)

#: Blocks set apart by an empty line, as a reader sees paragraphs.
PARAGRAPHS = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr"})

#: Link addresses worth showing beside the link text.
_SHOWN_SCHEMES = ("http://", "https://", "mailto:")

# Strings a browser does not show: comments, CDATA (a bogus comment in HTML), doctypes, processing instructions.
_HIDDEN = (Comment, CData, Declaration, Doctype, ProcessingInstruction)
# What marks a string as HTML: a tag (opening, closing, comment, doctype) or a character reference.
_LOOKS_HTML = re.compile(r"<[A-Za-z!/?]|&(#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
# Control characters other than tab and line feed: nothing a reader can see.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\f\r\n\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")
# Block edges, put in after whitespace is collapsed: "a new line here" / "a paragraph break here".
_LINE = "\x00L\x00"
_PARAGRAPH = "\x00P\x00"
# Block edges that meet, with only spaces between them: one break (a paragraph break if any edge asks).
_EDGES = re.compile("(?:[ \t]*(?:\x00L\x00|\x00P\x00)[ \t]*)+")


def looks_like_html(value: str) -> bool:
    """Whether ``value`` holds a tag or a character reference (else it is read as plain text)."""
    return _LOOKS_HTML.search(value) is not None


def plain_text(value: str | None) -> str | None:
    """Readable plain text of a Zoho HTML field; None stays None.

    A value without tags or character references is plain text already: only its line ends and control
    characters are normalised, so a description sent as plain text keeps its line breaks.
    """
    if value is None:
        return None
    if not looks_like_html(value):
        text = _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
        return "\n".join(line.rstrip() for line in text.split("\n")).strip()
    return _from_html(value)


def _from_html(value: str) -> str:
    """Walk the parsed tree depth first, without changing it (bs4's tree edits cost time per sibling) and
    without recursion (nesting depth is the sender's choice), collecting text and break markers."""
    soup = BeautifulSoup(value, "html.parser")
    out: list[str] = []
    in_pre = 0
    # (node, None) enters a node; (tag, index into out where it began) leaves a tag.
    stack: list[tuple[PageElement, int | None]] = [(soup, None)]
    while stack:
        node, began = stack.pop()
        if began is not None and isinstance(node, Tag):
            in_pre -= node.name == "pre"
            _leave(node, began, out)
        elif isinstance(node, NavigableString):
            if not isinstance(node, _HIDDEN):
                # Whitespace in the source is layout, not content (outside <pre>).
                out.append(str(node) if in_pre else _SPACES.sub(" ", str(node)))
        elif isinstance(node, Tag) and node.name not in DROPPED:
            name = node.name
            if name == "br":
                out.append("\n")  # a real line break: kept even beside a block's edge
                continue
            if name == "img":
                alt = str(node.get("alt") or "").strip()
                out.append(f"[{alt}]" if alt else "")
                continue
            if name in BLOCKS:
                out.append(_PARAGRAPH if name in PARAGRAPHS else _LINE)
                if name == "li":
                    out.append("- ")
            in_pre += name == "pre"
            stack.append((node, len(out)))
            stack.extend((child, None) for child in reversed(node.contents))
    return _tidy("".join(out))


def _leave(tag: Tag, began: int, out: list[str]) -> None:
    """What follows a tag's content: a block's end, a cell's gap, a link's address."""
    name = tag.name
    if name in BLOCKS:
        out.append(_PARAGRAPH if name in PARAGRAPHS else _LINE)  # meeting edges merge into one break in _tidy
    elif name in ("td", "th"):
        out.append(" \t ")
    elif name == "a":
        # The address beside the link text when it says more than the text (never javascript: and the like).
        href = str(tag.get("href") or "").strip()
        text = "".join(out[began:]).strip()
        if href.lower().startswith(_SHOWN_SCHEMES) and href not in text and href.removeprefix("mailto:") != text:
            out.append(f" ({href})")


def _tidy(text: str) -> str:
    """Turn the markers into line breaks and trim the spaces and empty lines the markup left."""
    text = _EDGES.sub(lambda edges: "\n\n" if _PARAGRAPH in edges.group() else "\n", text)
    text = _CONTROL.sub("", text)
    lines = [" ".join(part.strip() for part in line.split("\t") if part.strip()) for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(line.strip(" ") for line in lines)).strip()


def for_html_field(text: str) -> str:
    """``text`` for a field Zoho reads as HTML (a description, a note, a resolution), such that
    :func:`plain_text` reads it back as ``text``.

    Text that does not look like HTML is sent as it is (what most text is, and what the seed's create
    does). Text that does is escaped (``<``, ``>``, ``&``) with its line breaks as ``<br>``; runs of spaces
    in it then read back as one.
    """
    if not looks_like_html(text):
        return text
    escaped = html.escape(text, quote=False)
    return escaped.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>")
