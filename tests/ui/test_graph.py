"""The workflow graph drawn server-side: layout by dependency depth, names escaped."""

from __future__ import annotations

from craton_wf.ui.graph import step_depths, workflow_svg


def test_a_sequence_is_one_row_and_a_graph_is_columns_by_depth() -> None:
    sequence = [{"name": "drain"}, {"name": "patch"}, {"name": "undrain"}]
    assert step_depths(sequence) == {"drain": 0, "patch": 1, "undrain": 2}
    graph = [
        {"name": "a", "depends_on": []},
        {"name": "b", "depends_on": ["a"]},
        {"name": "c", "depends_on": ["a"]},
        {"name": "d", "depends_on": ["b", "c"]},
        {"name": "e", "depends_on": []},
    ]
    assert step_depths(graph) == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 0}
    svg = str(workflow_svg(graph))
    assert svg.count('class="edge"') == 4
    assert svg.count("<g class=") == 5


def test_states_colour_the_steps_and_names_are_escaped() -> None:
    steps = [{"name": "<script>x</script>", "task": "t"}, {"name": "ok"}]
    link = {"ok": "/ui/jobs/1?step=ok"}
    svg = str(workflow_svg(steps, {"ok": "FAILED"}, {"ok": "1 failed"}, link))
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'class="node bad"' in svg and "1 failed" in svg and 'href="/ui/jobs/1?step=ok"' in svg
