"""Snippet ranking: Jaccard similarity of identifier sets, windows over other files, stable ties."""

from __future__ import annotations

from llamita.lsp.completion.snippets import chunks, identifiers, jaccard, query_text, rank


def test_identifiers_drop_keywords_and_one_letter_names() -> None:
    assert identifiers("def load_user(self, x):\n    return db.get(User, x)") == {
        "load_user",
        "db",
        "get",
        "user",
    }
    assert identifiers("") == frozenset()


def test_jaccard() -> None:
    a, b = frozenset({"db", "get", "user"}), frozenset({"db", "user", "save", "row"})
    assert jaccard(a, b) == 2 / 5
    assert jaccard(a, frozenset()) == 0.0
    assert jaccard(a, a) == 1.0


def test_chunks_are_overlapping_windows() -> None:
    text = "\n".join(f"line{i} = {i}" for i in range(30))
    found = chunks("a.py", text, window=12, step=6)
    assert [(c.start, c.end) for c in found] == [(0, 12), (6, 18), (12, 24), (18, 30)]
    assert found[0].text.split("\n")[0] == "line0 = 0" and found[0].path == "a.py"
    assert chunks("e.py", "\n\n\n") == ()


def test_query_leaves_out_the_line_being_typed() -> None:
    before = "import db\n\ndef save(user):\n    db.put(us"
    assert query_text(before) == "import db\n\ndef save(user):"
    assert query_text(before + "er") == query_text(before)  # stable while typing on the line
    assert query_text("first line") == ""
    assert query_text("a\nb\nc\nd\n", lines=2) == "c\nd"


def test_rank_best_first_without_overlaps_and_deterministic() -> None:
    users = "\n".join(["def load_user(db, user_id):", "    return db.get(User, user_id)", *["pass"] * 20])
    orders = "\n".join(["def load_order(db, order_id):", "    return db.get(Order, order_id)"])
    query = "def save_user(db, user):\n    db.put(User, user)"
    ranked = rank(query, [("orders.py", orders), ("users.py", users)])
    assert ranked[0].chunk.path == "users.py" and ranked[0].chunk.start == 0
    assert [r.chunk.path for r in ranked] == ["users.py", "orders.py"]  # users.py's other windows overlap
    assert all(r.score > 0 for r in ranked)
    assert rank(query, [("users.py", users), ("orders.py", orders)]) == ranked
    assert rank("", [("users.py", users)]) == []
