"""Reading rendered pages as a browser would: forms with their fields, links, text, by the stdlib HTML parser."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit


@dataclass
class Form:
    action: str
    method: str
    # name -> value of hidden and text fields, and of checked radios and checkboxes
    values: dict[str, list[str]] = field(default_factory=dict)
    # name -> every value a radio, checkbox or select offers
    options: dict[str, list[str]] = field(default_factory=dict)
    buttons: list[tuple[str | None, str | None]] = field(default_factory=list)

    def fields(self, **chosen: str | list[str]) -> dict[str, list[str]]:
        """What submitting the form sends, with `chosen` replacing the defaults of those fields."""
        sent = {name: list(values) for name, values in self.values.items()}
        for name, value in chosen.items():
            sent[name] = [value] if isinstance(value, str) else list(value)
        return sent


@dataclass
class Page:
    title: str = ""
    text: str = ""
    forms: list[Form] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    # attributes of elements with an id or a data-* attribute, to find marked elements
    marked: list[dict[str, str | None]] = field(default_factory=list)
    lang: str | None = None

    def form(self, action_contains: str = "") -> Form:
        matching = [f for f in self.forms if action_contains in f.action]
        assert matching, f"no form with action containing {action_contains!r}: {[f.action for f in self.forms]}"
        return matching[0]

    def has(self, text: str) -> bool:
        return text in self.text


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._form: Form | None = None
        self._select: str | None = None
        self._textarea: str | None = None
        self._in_title = False
        self._skip = 0
        self._chunks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if any(name == "id" or name.startswith("data-") for name in a):
            self.page.marked.append({"tag": tag, **a})
        if tag == "html":
            self.page.lang = a.get("lang")
        elif tag in ("script", "style"):
            self._skip += 1
        elif tag == "title":
            self._in_title = True
        elif tag == "a" and a.get("href"):
            self.page.links.append(str(a["href"]))
        elif tag == "form":
            self._form = Form(action=a.get("action") or "", method=(a.get("method") or "get").lower())
            self.page.forms.append(self._form)
        elif self._form is not None:
            self._field(tag, a)

    def _field(self, tag: str, a: dict[str, str | None]) -> None:
        assert self._form is not None
        name = a.get("name")
        if tag == "input" and name:
            kind = (a.get("type") or "text").lower()
            value = a.get("value") or ("on" if kind in ("checkbox", "radio") else "")
            if kind in ("radio", "checkbox"):
                self._form.options.setdefault(name, []).append(value)
                if "checked" in a:
                    self._form.values.setdefault(name, []).append(value)
            elif kind in ("submit", "button"):
                self._form.buttons.append((name, value))
            else:
                self._form.values.setdefault(name, []).append(value)
        elif tag == "button":
            self._form.buttons.append((name, a.get("value")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select:
            value = a.get("value") or ""
            self._form.options.setdefault(self._select, []).append(value)
            if "selected" in a or self._select not in self._form.values:
                self._form.values[self._select] = [value]
        elif tag == "textarea" and name:
            self._textarea = name
            self._form.values[name] = [""]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1
        elif tag == "title":
            self._in_title = False
        elif tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._in_title:
            self.page.title += data.strip()
        if self._textarea and self._form is not None:
            self._form.values[self._textarea] = [self._form.values[self._textarea][0] + data]
        self._chunks.append(data)

    def close(self) -> None:
        super().close()
        self.page.text = " ".join(" ".join(self._chunks).split())


def parse(html: str) -> Page:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.page


def path_of(url: str, base: str = "http://test/") -> str:
    """The path and query of a link or form action, relative to the page it is on."""
    parts = urlsplit(urljoin(base, url))
    return parts.path + (f"?{parts.query}" if parts.query else "")
