"""Drawing helpers shared by pages: formatting, tables, banners, refresh and confirmation."""
