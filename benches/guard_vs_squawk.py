#!/usr/bin/env python3
"""The migration guard against squawk on the SQL part of the labelled corpus.

Each single-file SQL case of tests/fixtures/migrations goes through the real
guard (`bluegreen plugin run`, with the lock timeout a deploy passes) and
through squawk (the squawk-cli release pinned in guard_vs_squawk.sh). A tool
"flags" a file when the guard blocks it, or when squawk reports a rule about
locks or breaking the running code (its style rules and its timeout rules are
left out: bluegreen sets the lock timeout for every migration, the way a team
running squawk would configure it). Against the labels (`block` = should be
flagged), it prints both tools' misses and false alarms side by side.

Usage: guard_vs_squawk.py BLUEGREEN GUARD_WASM SQUAWK
"""

import json
import pathlib
import subprocess
import sys
import tempfile

# squawk rules that are about style, robustness or timeouts, not about what
# a deploy breaks or locks.
NOT_ALARMS = {
    "prefer-robust-stmts", "prefer-bigint-over-int", "prefer-bigint-over-smallint",
    "prefer-identity", "prefer-text-field", "prefer-timestamptz", "prefer-timestamp-tz",
    "ban-char-field", "identifier-too-long", "require-lock-timeout",
    "require-statement-timeout", "require-timeout-settings", "require-enum-value-ordering",
    "transaction-nesting", "ban-uncommitted-transaction", "ban-duplicate-column-assignments",
    "require-table-schema", "syntax-error", "unused-ignore",
}


def label(path):
    first = path.read_text().splitlines()[0]
    return first.lstrip("-# ").removeprefix("expect:").strip()


def guard(bluegreen, wasm, path, tmp):
    ctx = {"pending": [{"path": f"db/migrate/{path.name}", "version": "1",
                        "phase": "expand", "contents": path.read_text()}]}
    ctx_file = pathlib.Path(tmp) / "ctx.json"
    ctx_file.write_text(json.dumps(ctx))
    out = subprocess.run(
        [bluegreen, "plugin", "run", wasm, "--hook", "migration-safety-check",
         "--context", str(ctx_file), "--setting", "bluegreen.lock-timeout=5s", "--json"],
        capture_output=True, text=True, timeout=60)
    if out.returncode not in (0, 3):
        sys.exit(f"{path.name}: bluegreen plugin run exited {out.returncode}: {out.stderr}")
    result = json.loads(out.stdout)
    errors = [f["rule"] for f in result["findings"] if f["severity"] == "error"]
    return out.returncode == 3, errors


def squawk(binary, path):
    out = subprocess.run([binary, "--reporter", "json", "--pg-version", "16", str(path)],
                         capture_output=True, text=True, timeout=60)
    found = json.loads(out.stdout or "[]")
    rules = sorted({v["rule_name"] for v in found} - NOT_ALARMS)
    return bool(rules), rules


def main():
    bluegreen, wasm, squawk_bin = sys.argv[1:4]
    corpus = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/migrations"
    # Down and undo files never run on deploy: the host never passes them
    # to the guard (deploy::release::is_down_migration), so neither does this.
    down = lambda n: n.endswith(".down.sql") or (n.startswith("U") and "__" in n)
    files = sorted(p for p in corpus.iterdir()
                   if p.is_file() and p.suffix == ".sql" and not down(p.name))
    score = {"guard": [0, 0, 0], "squawk": [0, 0, 0]}  # caught, missed, false alarms
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            expect = label(path)
            should = expect.startswith("block")
            g_flag, g_rules = guard(bluegreen, wasm, path, tmp)
            s_flag, s_rules = squawk(squawk_bin, path)
            for tool, flag in (("guard", g_flag), ("squawk", s_flag)):
                s = score[tool]
                if should and flag:
                    s[0] += 1
                elif should:
                    s[1] += 1
                elif flag:
                    s[2] += 1
            if (g_flag != should) or (s_flag != should):
                rows.append((path.name, expect, g_flag, g_rules, s_flag, s_rules))
    blocking = sum(1 for p in files if label(p).startswith("block"))
    print(f"SQL cases: {len(files)} ({blocking} should be flagged, {len(files) - blocking} should not)")
    print(f"{'tool':<8} {'caught':>7} {'missed':>7} {'false alarms':>13} {'recall':>7} {'precision':>10}")
    for tool, (tp, fn, fp) in score.items():
        recall = tp / max(tp + fn, 1)
        precision = tp / max(tp + fp, 1)
        print(f"{tool:<8} {tp:>7} {fn:>7} {fp:>13} {recall:>7.3f} {precision:>10.3f}")
    print("\nwhere a tool disagrees with the label (guard | squawk):")
    for name, expect, g_flag, g_rules, s_flag, s_rules in rows:
        def verdict(flag, rules, should=expect.startswith("block")):
            word = "flags" if flag else "passes"
            mark = "" if flag == should else " ✗"
            return f"{word}{mark} {','.join(rules)}".strip()
        print(f"  {name:<52} {expect:<40} {verdict(g_flag, g_rules):<40} | {verdict(s_flag, s_rules)}")


if __name__ == "__main__":
    main()
