"""Escaping text from people and devices before it goes into Markdown (st.markdown and kin).

st.markdown, st.caption, st.info/success/warning/error, st.subheader and widget labels all read
Markdown, so a device named `[click](http://evil.example)` or a note with `![x](http://...)`
would show a link or load a remote image on an operator's screen. Every user- or
device-supplied string goes through `md_escape` on its way into them; st.dataframe is not
Markdown and needs nothing.
"""

from __future__ import annotations

import re

# Enough to stop emphasis, links and images ([...]), HTML, colour and icon directives (:red[...]),
# tables, code and LaTeX. Parentheses and colons stay: without "[" they cannot make a link.
_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]<>#|~$@")
# Bare addresses become links in GitHub-flavoured Markdown: "http://", "www.".
_AUTOLINK = re.compile(r"(?i)(?<=[a-z0-9])(:)(?=//)|(?<![a-z0-9])(www)(\.)")


def md_escape(text: object) -> str:
    """`text` shown literally inside Markdown: no links, images, formatting or HTML."""
    escaped = "".join(f"\\{c}" if c in _MARKDOWN_SPECIAL else c for c in str(text))
    return _AUTOLINK.sub(
        lambda m: "\\:" if m.group(1) else f"{m.group(2)}\\{m.group(3)}", escaped
    ).replace("\n", " ")
