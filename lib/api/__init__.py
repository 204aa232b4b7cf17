"""Custom HTTP routes served by st.App beside the pages."""
