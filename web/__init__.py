"""The web app (``python -m web``): pages for people and a JSON API for programs over
the same store and inbox as the other services; uploads land in the inbox like any drop."""
