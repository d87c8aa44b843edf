"""Maps for each role's page: data in, a folium.Map (or a notice board's PNG/PDF bytes) out, never a query."""
