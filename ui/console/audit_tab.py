"""The console's Audit tab (admins only): what was done, newest first."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from footage.db import Catalog
from footage.users import read_audit

SHOWN = 500


def audit_tab(catalog: Catalog) -> None:
    entries = read_audit(catalog, limit=SHOWN)
    if not entries:
        st.caption("Nothing recorded yet.")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "at (UTC)": f"{e.at:%Y-%m-%d %H:%M:%S}",
                    "who": e.actor,
                    "from": e.source,
                    "did": e.action,
                    "what": e.target,
                    "outcome": e.outcome,
                }
                for e in entries
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(f"The newest {SHOWN} entries; `footage audit` reads them all.")
