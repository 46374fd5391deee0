"""The console's SQL tab: one read-only SELECT over the views (search/sql), sandboxed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from footage.settings import Settings
from search.sql import QueryError, QueryRefused, QueryResult, run_readonly


def query_frame(result: QueryResult) -> pd.DataFrame:
    return pd.DataFrame(list(result.rows), columns=list(result.columns))


def sql_tab(settings: Settings, cameras: tuple[str, ...] | None = None) -> None:
    """`cameras`: the signed-in user's scope (their SQL sees only those cameras' rows)."""
    st.caption(
        f"One read-only SELECT, stopped after {settings.sql_timeout_s:g} s. Views: "
        "detections_v, segments_v, tracks_v (see the README)."
    )
    with st.form("sql_form", border=False):
        query = st.text_area(
            "SQL",
            "SELECT camera, label, count(*) AS n FROM detections_v GROUP BY camera, label "
            "ORDER BY n DESC",
            key="sql",
        )
        limit_col, run_col = st.columns([1, 5], vertical_alignment="bottom")
        limit = limit_col.number_input("Row limit", 1, 100_000, 1000, key="sql_limit")
        if run_col.form_submit_button("Run", key="sql_run"):
            try:
                answer: QueryResult | str = run_readonly(
                    settings, query, limit=int(limit), cameras=cameras
                )
            except QueryRefused as exc:
                answer = f"Query refused: {exc}"
            except QueryError as exc:
                answer = f"Query failed: {exc}"
            st.session_state.sql_answer = answer  # kept while other widgets rerun the page
    shown = st.session_state.get("sql_answer")
    if isinstance(shown, str):
        st.error(shown)
    elif shown is not None:
        st.dataframe(query_frame(shown), hide_index=True, width="stretch")
        if shown.notice:
            st.warning(shown.notice)
