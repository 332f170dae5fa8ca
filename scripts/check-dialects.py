"""Parses SQL statements printed by `erp-sync sql` with sqlglot in a dialect and checks the bans.

    python3 scripts/check-dialects.py tsql < statements.sql
    python3 scripts/check-dialects.py oracle < statements.sql

Statements end with ';' at the end of a line; '--' lines are comments. Oracle binds are read as :name by
sqlglot, so each '?' marker becomes :p1, :p2 ... before parsing. Bans (SPEC.md "Seed flaws we fix"): no
LIMIT, no OFFSET (so never TOP with OFFSET), and for T-SQL a TOP in every page. Exits 1 naming each
statement that does not parse or breaks a ban; prints "N passed, 0 failed" otherwise.
"""
import re
import sys

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError


def statements(text):
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";\n") if s.strip().rstrip(";")]


def main():
    dialect = sys.argv[1]
    passed, failures = 0, []
    for sql in statements(sys.stdin.read()):
        sql = sql.rstrip(";")
        if sql.upper().startswith("ALTER SESSION"):
            continue  # sqlglot has no grammar for Oracle's ALTER SESSION; the text is checked by the Swift tests
        text = sql
        if dialect == "oracle":
            counter = iter(range(1, 10_000))
            text = re.sub(r"\?", lambda _: f":p{next(counter)}", sql)
        try:
            tree = sqlglot.parse_one(text, read=dialect)
        except SqlglotError as error:
            failures.append(f"does not parse as {dialect}: {error}\n    {sql}")
            continue
        problems = [] if isinstance(tree, exp.Query) else [f"not parsed as a query ({type(tree).__name__})"]
        if re.search(r"\bLIMIT\b", sql, re.IGNORECASE):
            problems.append("uses LIMIT")
        if re.search(r"\bOFFSET\b", sql, re.IGNORECASE) or any(True for _ in tree.find_all(exp.Offset)):
            problems.append("uses OFFSET")
        is_page = not sql.startswith("SELECT 1 ")
        if dialect == "tsql" and is_page and not sql.startswith("SELECT TOP ("):
            problems.append("a page without TOP (n)")
        if dialect == "oracle" and is_page and "FETCH FIRST" not in sql and "ROWNUM <=" not in sql:
            problems.append("a page without FETCH FIRST or ROWNUM")
        if problems:
            failures.append(", ".join(problems) + f"\n    {sql}")
        else:
            passed += 1
    for failure in failures:
        print(f"check-dialects: {failure}", file=sys.stderr)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
