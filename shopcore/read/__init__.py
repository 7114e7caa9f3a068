"""The read side: projections (event -> read-model change), queries, the query API."""
