"""SQL row conditions (``input.filter_query``) as pyarrow dataset expressions.

The copairs runner filters Parquet files lazily with an SQL ``WHERE``
condition such as ``Metadata_Source = 'source_2' AND Metadata_dose > 0.1``.
This module parses that language (comparisons ``= == != <> < <= > >=``,
``AND``/``OR``/``NOT``, parentheses, ``IN (...)``, ``NOT IN``, ``IS [NOT]
NULL``, ``BETWEEN a AND b``, ``LIKE``; column names bare or in double quotes;
strings in single quotes) into a :class:`pyarrow.dataset.Expression`, so the
file is filtered while it is read: row groups whose statistics exclude the
condition are skipped and non-matching rows are never converted to pandas.
"""

from __future__ import annotations

import re

from pairmap.runner.loading import ConfigError

__all__ = ["sql_to_expression"]

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)|(?P<str>'(?:[^']|'')*')"
    r"|(?P<qid>\"(?:[^\"]|\"\")+\")|(?P<id>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op><>|!=|==|<=|>=|=|<|>|\(|\)|,))"
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "NULL", "BETWEEN", "LIKE", "TRUE", "FALSE"}


def _tokens(text: str) -> list[tuple[str, object]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ConfigError(
                f"filter_query {text!r}: cannot read it at {text[pos : pos + 20]!r}; "
                f"write an SQL condition such as \"Metadata_Plate = 'P1'\""
            )
        pos = m.end()
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "num":
            out.append(("lit", float(value) if any(c in value for c in ".eE") else int(value)))
        elif kind == "str":
            out.append(("lit", value[1:-1].replace("''", "'")))
        elif kind == "qid":
            out.append(("col", value[1:-1].replace('""', '"')))
        elif kind == "id" and value.upper() in _KEYWORDS:
            out.append(("kw", value.upper()))
        elif kind == "id":
            out.append(("col", value))
        else:
            out.append(("op", "=" if value == "==" else "!=" if value == "<>" else value))
    return out


class _Parser:
    """Recursive descent: or -> and -> not -> predicate."""

    def __init__(self, text: str, columns: set[str] | None):
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        self.pc, self.ds, self.text = pc, ds, text
        self.toks, self.i, self.columns = _tokens(text), 0, columns

    def error(self, what: str) -> ConfigError:
        return ConfigError(
            f"filter_query {self.text!r}: {what}; write an SQL condition such "
            f"as \"Metadata_Plate = 'P1' AND Metadata_dose > 0.1\""
        )

    def peek(self, kind=None, value=None):
        if self.i >= len(self.toks):
            return None
        tok = self.toks[self.i]
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            return None
        return tok

    def take(self, kind=None, value=None):
        tok = self.peek(kind, value)
        if tok is None:
            found = self.toks[self.i][1] if self.i < len(self.toks) else "the end"
            raise self.error(f"expected {value or kind}, found {found!r}")
        self.i += 1
        return tok

    def parse(self):
        expr = self.disjunction()
        if self.i != len(self.toks):
            raise self.error(f"unexpected {self.toks[self.i][1]!r}")
        return expr

    def disjunction(self):
        expr = self.conjunction()
        while self.peek("kw", "OR"):
            self.i += 1
            expr = expr | self.conjunction()
        return expr

    def conjunction(self):
        expr = self.negation()
        while self.peek("kw", "AND"):
            self.i += 1
            expr = expr & self.negation()
        return expr

    def negation(self):
        if self.peek("kw", "NOT"):
            self.i += 1
            return ~self.negation()
        if self.peek("op", "("):
            self.i += 1
            expr = self.disjunction()
            self.take("op", ")")
            return expr
        return self.predicate()

    def operand(self):
        tok = self.peek("col") or self.peek("lit")
        if tok is None and (self.peek("kw", "TRUE") or self.peek("kw", "FALSE")):
            return self.ds.scalar(self.take("kw")[1] == "TRUE")
        if tok is None:
            raise self.error("expected a column name or a value")
        self.i += 1
        if tok[0] == "lit":
            return self.ds.scalar(tok[1])
        if self.columns is not None and tok[1] not in self.columns:
            raise self.error(f"column {tok[1]!r} is not in the file (strings need single quotes)")
        return self.ds.field(tok[1])

    def predicate(self):
        left = self.operand()
        if self.peek("kw", "IS"):
            self.i += 1
            negate = bool(self.peek("kw", "NOT")) and bool(self.take("kw", "NOT"))
            self.take("kw", "NULL")
            return ~left.is_null() if negate else left.is_null()
        negate = bool(self.peek("kw", "NOT")) and bool(self.take("kw", "NOT"))
        expr = self._membership(left) if self.peek("kw") else self._comparison(left)
        # SQL: a NULL value satisfies neither ``x IN (...)`` nor ``x NOT IN (...)``
        return (~expr & left.is_valid()) if negate else expr

    def _membership(self, left):
        kw = self.take("kw")[1]
        if kw == "IN":
            self.take("op", "(")
            values = [self.take("lit")[1]]
            while self.peek("op", ","):
                self.i += 1
                values.append(self.take("lit")[1])
            self.take("op", ")")
            return left.isin(values)
        if kw == "BETWEEN":
            low = self.operand()
            self.take("kw", "AND")
            return (left >= low) & (left <= self.operand())
        if kw == "LIKE":
            pattern = self.take("lit")[1]
            return self.pc.match_like(left, pattern)
        raise self.error(f"unexpected {kw}")

    def _comparison(self, left):
        op = self.take("op")[1]
        right = self.operand()
        ops = {
            "=": left.__eq__,
            "!=": left.__ne__,
            "<": left.__lt__,
            "<=": left.__le__,
            ">": left.__gt__,
            ">=": left.__ge__,
        }
        if op not in ops:
            raise self.error(f"unexpected {op!r}")
        return ops[op](right)


def sql_to_expression(text: str, columns=None):
    """Parse an SQL row condition into a :class:`pyarrow.dataset.Expression`.

    Parameters
    ----------
    text : str
        The condition, e.g. ``"Metadata_Plate IN ('P1', 'P2') AND Metadata_dose > 0.1"``.
    columns : iterable of str, optional
        The file's column names: an unknown column is an error naming it.

    Returns
    -------
    pyarrow.dataset.Expression

    Examples
    --------
    >>> import pyarrow as pa
    >>> t = pa.table({"Metadata_Plate": ["P1", "P2", "P3"], "dose": [1.0, 2.0, 3.0]})
    >>> expr = sql_to_expression("Metadata_Plate <> 'P2' AND dose >= 1", t.column_names)
    >>> t.filter(expr)["Metadata_Plate"].to_pylist()
    ['P1', 'P3']
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"filter_query must be a non-empty SQL condition, got {text!r}")
    return _Parser(text, None if columns is None else set(columns)).parse()
