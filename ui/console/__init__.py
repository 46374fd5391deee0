"""The Streamlit search console (`footage console`).

app.py is the script Streamlit runs: page, sidebar filters and the tabs' wiring. Each tab
is a module of its own (search_tab, ask_tab, videos_tab, timeline_tab, sql_tab) holding its
queries and drawing; shared.py holds what more than one tab uses (the one Searcher per
process, the player, time and video helpers, the catalog stamp cached queries are keyed on).
"""
