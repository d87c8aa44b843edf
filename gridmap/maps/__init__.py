"""Folium map builders, one module per role page: they receive frames and return a folium.Map, never query."""
