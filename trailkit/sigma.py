"""Sigma rules over a lineage's events, on either engine.

pySigma reads the rules (``logsource: product: aws, service: cloudtrail``); ``CloudTrailBackend`` turns each
rule's detection into one Athena SQL boolean over the CloudTrail table (``trailkit.schema``): ``eventSource`` is
``eventsource``, ``userIdentity.sessionContext.sessionIssuer.type`` the struct field, ``requestParameters.userName``
``json_extract_scalar(requestparameters, '$.userName')``. Sigma's matching is kept: strings case-insensitive
(unless ``|cased``), ``*``/``?`` wildcards as ``LIKE`` with every ``%``/``_`` of the value escaped, a field that is
missing never matches (and ``not`` of it does). Values are SQL literals with quotes doubled, and every expression
is parsed back to check it is one expression, so a hostile rule cannot reach outside its comparison.

A folder's rules run in one query over the lineage's events (one column per rule; one query per ``CHUNK`` rules
for large folders); rules that cannot be converted (keywords, timeframes, correlations, fields CloudTrail has
not) are listed with the reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import queries
from .contract import Contract
from .errors import InvalidInput, require
from .schema import COLUMNS

if TYPE_CHECKING:
    import pandas as pd

    from .inputs import Window
    from .questions import Request

LEVELS = {"critical": "high", "high": "high", "medium": "medium", "low": "low", "informational": "info"}
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_JSON_KEY = re.compile(r"[A-Za-z0-9_\-:@$/+ ]+")  # no quote, backslash, bracket or control character


def _shape(columns) -> dict:
    """The table as the converter addresses it: scalar ``s``, ``json`` text, structs as dicts, others by kind."""
    out = {}
    for col in columns:
        if col.kind == "string":
            out[col.name] = "s"
        elif col.kind == "struct":
            out[col.name] = _shape(col.fields)
        else:
            out[col.name] = col.kind  # json, map, array
    return out


SHAPE = _shape(COLUMNS)


class Unsupported(Exception):
    """A rule (or part of one) this converter cannot express as SQL."""


def literal(s: str) -> str:
    """An SQL string literal: quotes doubled (Athena and DuckDB take backslashes literally). A control character
    (a newline, NUL) is refused: no value may start a line of the query."""
    if re.search(r"[\x00-\x1f\x7f]", s):
        raise Unsupported("a value holds a control character (a newline, a tab, NUL)")
    return "'" + s.replace("'", "''") + "'"


def json_path(keys: list[str]) -> str:
    out = "$"
    for k in keys:
        if _IDENT.fullmatch(k):
            out += "." + k
        elif _JSON_KEY.fullmatch(k):
            out += '["' + k + '"]'
        else:
            raise Unsupported(f"JSON key {k!r} has characters that cannot be put in a JSON path")
    return out


def column(name: str) -> str:
    """A Sigma field name as an SQL text expression over the table; an unknown field is an error, never NULL."""
    parts = name.split(".")
    top = parts[0].lower()
    kind = SHAPE.get(top)
    if kind is None:
        raise Unsupported(f"field {name!r} is not a field of CloudTrail records")
    if kind == "json":
        if len(parts) == 1:
            return top
        p = literal(json_path(parts[1:]))
        # an object or array is NULL to Athena's json_extract_scalar and its JSON text to DuckDB's: use the text
        return f"coalesce(json_extract_scalar({top}, {p}), json_format(json_extract({top}, {p})))"
    path = [top]
    for part in parts[1:]:
        if not isinstance(kind, dict) or part.lower() not in kind:
            raise Unsupported(f"field {name!r}: {'.'.join(path)} has no field {part!r}")
        kind = kind[part.lower()]
        path.append(part.lower())
    if kind != "s":
        raise Unsupported(f"field {name!r} is a {kind if isinstance(kind, str) else 'struct'}, not a value")
    return ".".join(path)


def _never_null(expr: str) -> str:
    """Sigma is two-valued: a missing field does not match and ``not`` of it does (SQL's NULL would make
    ``selection and not filter`` NULL whenever the filter's field is missing)."""
    return f"coalesce({expr}, false)"


def _backend():
    require("sigma", "pysigma")
    from sigma.conditions import ConditionAND, ConditionFieldEqualsValueExpression, ConditionNOT, ConditionOR
    from sigma.conversion.base import TextQueryBackend
    from sigma.processing.pipeline import ProcessingPipeline
    from sigma.types import (Placeholder, SigmaCasedString, SigmaCompareExpression, SigmaNumber,
                             SigmaRegularExpressionFlag, SigmaString, SpecialChars)

    class CloudTrailBackend(TextQueryBackend):
        """One Athena SQL boolean per rule over the CloudTrail table."""

        name = "trailkit CloudTrail SQL"
        formats = {"default": "SQL boolean expression"}
        precedence = (ConditionNOT, ConditionAND, ConditionOR)
        group_expression = "({expr})"
        token_separator, or_token, and_token, not_token, eq_token = " ", "OR", "AND", "NOT", " = "
        str_quote = "'"
        field_null_expression = "{field} IS NULL"
        field_exists_expression = "{field} IS NOT NULL"
        field_not_exists_expression = "{field} IS NULL"
        compare_op_expression = "coalesce(try_cast({field} AS double) {operator} {value}, false)"
        compare_operators = {SigmaCompareExpression.CompareOperators.LT: "<",
                             SigmaCompareExpression.CompareOperators.LTE: "<=",
                             SigmaCompareExpression.CompareOperators.GT: ">",
                             SigmaCompareExpression.CompareOperators.GTE: ">="}
        field_equals_field_expression = "coalesce(lower({field1}) = lower({field2}), false)"
        field_equals_field_contains_expression = "coalesce(strpos(lower({field1}), lower({field2})) > 0, false)"
        field_equals_field_startswith_expression = "coalesce(starts_with(lower({field1}), lower({field2})), false)"
        field_equals_field_endswith_expression = ("coalesce(strpos(reverse(lower({field1})), "
                                                  "reverse(lower({field2}))) = 1, false)")
        convert_or_as_in = True

        def escape_and_quote_field(self, field_name):
            return column(field_name)

        def _match(self, name, value, cased: bool) -> str:
            f = column(name) if cased else f"lower({column(name)})"
            if any(isinstance(p, Placeholder) for p in value.s):
                raise Unsupported("placeholder (|expand) values need a pipeline that fills them")
            if not value.contains_special():
                text = "".join(value.s)
                return _never_null(f"{f} = {literal(text if cased else text.lower())}")
            pattern = "".join(
                "%" if p is SpecialChars.WILDCARD_MULTI else "_" if p is SpecialChars.WILDCARD_SINGLE
                else re.sub(r"([\\%_])", r"\\\1", p if cased else p.lower()) for p in value.s)
            if pattern.strip("%") == "":  # '*': any value at all
                return f"{column(name)} IS NOT NULL"
            return _never_null(f"{f} LIKE {literal(pattern)} ESCAPE '\\'")

        def convert_condition_field_eq_val_str(self, cond, state):
            return self._match(cond.field, cond.value, cased=False)

        def convert_condition_field_eq_val_str_case_sensitive(self, cond, state):
            return self._match(cond.field, cond.value, cased=True)

        def convert_condition_field_eq_val_num(self, cond, state):  # every column is text
            return _never_null(f"{column(cond.field)} = {literal(str(cond.value))}")

        def convert_condition_field_eq_val_bool(self, cond, state):
            return _never_null(f"lower({column(cond.field)}) = {literal(str(bool(cond.value.boolean)).lower())}")

        def convert_condition_field_eq_val_re(self, cond, state):
            flags = {SigmaRegularExpressionFlag.IGNORECASE: "i", SigmaRegularExpressionFlag.MULTILINE: "m",
                     SigmaRegularExpressionFlag.DOTALL: "s"}
            prefix = "".join(flags[f] for f in sorted(cond.value.flags, key=lambda f: f.value))
            rx = (f"(?{prefix})" if prefix else "") + str(cond.value.regexp)
            return _never_null(f"regexp_like({column(cond.field)}, {literal(rx)})")

        def convert_condition_field_eq_val_cidr(self, cond, state):  # prefixes as LIKE 'a.b.%' on both engines
            return self.convert_condition_or(ConditionOR([ConditionFieldEqualsValueExpression(
                cond.field, SigmaString(p)) for p in cond.value.expand()], cond.source), state)

        def decide_convert_condition_as_in_expression(self, cond, state):
            return (isinstance(cond, ConditionOR) and len(cond.args) > 1
                    and not any(isinstance(a, ConditionFieldEqualsValueExpression)
                                and isinstance(a.value, SigmaCasedString) for a in cond.args)
                    and super().decide_convert_condition_as_in_expression(cond, state))

        def convert_condition_as_in_expression(self, cond, state):
            values = [str(a.value) if isinstance(a.value, SigmaNumber) else "".join(a.value.s).lower()
                      for a in cond.args]
            return _never_null(f"lower({column(cond.args[0].field)}) IN ({', '.join(map(literal, values))})")

        def convert_condition_val_str(self, cond, state):
            raise Unsupported("keyword (unbound value) search: CloudTrail records have no single message field")

        convert_condition_val_num = convert_condition_val_re = convert_condition_val_str

        def convert_condition_field_eq_query_expr(self, cond, state):
            raise Unsupported("query expressions from pipelines are not supported")

        def finalize_query_default(self, rule, query, index, state):
            return query

    return CloudTrailBackend(ProcessingPipeline(), collect_errors=False)


@dataclass
class SigmaRule:
    """One rule of the folder: converted (``expr``) or not (``reason``)."""

    path: str
    id: str
    title: str
    level: str | None
    tags: list[str]
    expr: str | None = None
    reason: str | None = None

    @property
    def technique(self) -> str:
        return " ".join(t.split(".", 1)[1].upper() for t in self.tags if re.fullmatch(r"attack\.t\d{4}(\.\d{3})?", t))


@dataclass
class RuleSet:
    folder: str
    rules: list[SigmaRule] = field(default_factory=list)  # converted
    skipped: list[SigmaRule] = field(default_factory=list)  # not, with the reason
    other: int = 0  # rules for other log sources

    def skipped_frame(self) -> "pd.DataFrame":
        import pandas as pd

        return pd.DataFrame([(Path(r.path).name, r.title, r.id, r.reason) for r in self.skipped],
                            columns=["file", "title", "id", "reason"])

    def describe(self) -> str:
        return (f"{len(self.rules)} Sigma rules converted, {len(self.skipped)} not"
                + (f" ({self.other} for other log sources left aside)" if self.other else ""))


def _reason(e: BaseException) -> str:
    return f"{e}".split(" (while ")[0].strip().splitlines()[0] if str(e).strip() else type(e).__name__


def load(folder) -> RuleSet:
    """The CloudTrail rules of ``folder`` (``*.yml``/``*.yaml``, recursively), converted."""
    require("sigma", "pysigma")
    from sigma.collection import SigmaCollection
    from sigma.correlations import SigmaCorrelationRule
    from sigma.exceptions import SigmaError, SigmaRuleLocation

    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InvalidInput(f"--sigma {folder}: not a folder; give a folder of Sigma rules (.yml)")
    files = sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
    if not files:
        raise InvalidInput(f"--sigma {folder}: no .yml or .yaml files in it; give a folder of Sigma rules")
    out, parts = RuleSet(str(root)), []
    for path in files:  # one by one: pySigma's folder loader stops at the first file that is not YAML
        def unread(why: str) -> None:
            out.skipped.append(SigmaRule(str(path), "", path.name, None, [], reason=f"unreadable: {why}"))

        try:
            part = SigmaCollection.from_yaml(path.read_text(encoding="utf-8"), collect_errors=True,
                                             source=SigmaRuleLocation(path), resolve_references=False)
        except Exception as e:  # YAML errors, undecodable bytes, nesting past the parser's depth, not a rule at all
            unread("nested too deeply" if isinstance(e, RecursionError) else _reason(e))
            continue
        errors = [e for e in getattr(part, "errors", None) or []]
        if errors:  # refused as a whole (an alias bomb, a document that is no rule): said, never dropped
            unread("; ".join(_reason(e) for e in errors))
        elif not part.rules:
            unread("no rule in it")
        else:
            parts.append(part)
    backend = _backend()
    for rule in SigmaCollection.merge(parts):
        level = getattr(rule, "level", None)
        item = SigmaRule(str(rule.source.path) if rule.source else "?", str(rule.id or ""), str(rule.title or ""),
                         level.name.lower() if level else None, [str(t) for t in getattr(rule, "tags", None) or []])
        try:
            if isinstance(rule, SigmaCorrelationRule):
                raise Unsupported("a correlation rule (counts or sequences of events) is not one event's test")
            if rule.errors:
                raise Unsupported("invalid rule: " + "; ".join(_reason(e) for e in rule.errors))
            if (rule.logsource.product, rule.logsource.service) != ("aws", "cloudtrail"):
                out.other += 1
                continue
            if "timeframe" in rule.detection.detections or getattr(rule.detection, "timeframe", None):
                raise Unsupported("a timeframe needs several events, not one event's test")
            queries = backend.convert_rule(rule)
            if not queries:
                raise Unsupported("the rule converts to no test (only used by a correlation rule?)")
            expr = queries[0] if len(queries) == 1 else " OR ".join(f"({q})" for q in queries)
            _checked(expr)
            item.expr = expr
            out.rules.append(item)
        except (Unsupported, SigmaError, NotImplementedError, ValueError, TypeError, AttributeError) as e:
            item.reason = _reason(e)
            out.skipped.append(item)
        except RecursionError:  # a condition nested past what the parsers follow
            item.reason = "its condition is nested too deeply to convert"
            out.skipped.append(item)
    return out


def _checked(expr: str) -> None:
    """Raise Unsupported unless ``expr`` parses as exactly one expression over the table's columns."""
    import sqlglot

    try:
        tree = sqlglot.parse_one(f"SELECT ({expr}) AS m FROM cloudtrail", read="athena")
    except sqlglot.errors.SqlglotError as e:
        raise Unsupported(f"its SQL does not parse ({_reason(e)})") from None
    except RecursionError:
        raise Unsupported("its condition is nested too deeply to convert") from None
    if len(tree.selects) != 1 or list(tree.find_all(sqlglot.exp.Subquery, sqlglot.exp.Select))[1:]:
        raise Unsupported("its SQL is not one expression")


#: rules per query: one query for a folder's rules, until thousands of CASE columns cost more than more queries
CHUNK = 200


def requests(ruleset: RuleSet, keys: list[str], within: "Window") -> list[tuple[list[SigmaRule], "Request"]]:
    """The queries that run ``ruleset`` over the lineage's events: one per ``CHUNK`` rules."""
    rules = ruleset.rules
    return [(rules[i:i + CHUNK], request(rules[i:i + CHUNK], keys, within)) for i in range(0, len(rules), CHUNK)]


def request(rules: list[SigmaRule], keys: list[str], within: "Window") -> "Request":
    """One query (``queries/sigma.sql``): the lineage's events (each once) that match any of ``rules``, with one
    0/1 column per rule. The rules' SQL is put in after the frame is rendered (its tagged lines, placeholders and
    partitions worked out), so no rule's text is ever read as part of the frame; the whole is then checked to
    read the table and nothing else, like free SQL."""
    from .questions import Request, ScanHints, read_only, window_params

    base = queries.get("sigma")
    tests = ",\n".join(f"    CASE WHEN {r.expr} THEN 1 ELSE 0 END AS r{i}" for i, r in enumerate(rules))
    any_of = " OR ".join(f"r{i} = 1" for i in range(len(rules)))
    contract = Contract.of({**dict(base.contract.columns), **{f"r{i}": "int" for i in range(len(rules))}})
    query = Filled("sigma", base.text, contract, (("tests", tests), ("any", any_of)))
    read_only(query.render({"keys": ("AKIAIOSFODNN7EXAMPLE",)})[0])
    return Request(query, {"keys": tuple(keys), **window_params(within)}, ScanHints(within, needles=tuple(keys)))


@dataclass(frozen=True)
class Filled(queries.Query):
    """A query whose ``{name}`` lines are filled after rendering, in one pass: what fills them is never read as
    tagged lines, placeholders or partitions."""

    fills: tuple[tuple[str, str], ...] = ()

    def render(self, params: dict, partitions: str = "") -> tuple[str, dict]:
        sql, used = super().render(params, partitions)
        fills = dict(self.fills)
        return re.sub(r"\{(" + "|".join(map(re.escape, fills)) + r")\}", lambda m: fills[m.group(1)], sql), used


def judge(rules: list[SigmaRule], matches: "pd.DataFrame | None") -> "pd.DataFrame":
    """One ``sigma`` finding per rule of ``rules`` and key that matched (``matches``: ``request(rules)``'s rows)."""
    from .contract import visible
    from .findings import finding, findings_frame

    out = []
    if matches is not None and len(matches):
        for i, rule in enumerate(rules):
            hit = matches[matches[f"r{i}"] == 1]
            for key, group in hit.groupby(hit["accesskeyid"].fillna(""), sort=True):
                row = {"accesskeyid": key or None, "first_seen": group["eventtime"].min(),
                       "last_seen": group["eventtime"].max(), "events": len(group),
                       "eventids": " ".join(group["eventid"].dropna())}
                summary = (f"{key or 'a key'}: Sigma rule '{visible(rule.title)}' ({rule.level or 'no level'}, "
                           f"{visible(Path(rule.path).name)}) matched {len(group)} event{'s' if len(group) != 1 else ''}")
                out.append(finding("sigma", LEVELS.get(rule.level or "", "medium"), rule.technique, row, summary,
                                    f"sigma:{rule.id or Path(rule.path).name}"))
    return findings_frame(out)
