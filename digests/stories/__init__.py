"""Stories and sections: section names from categories, /latest paging, full-text search; its
service answers /latest, /search and their buttons."""
