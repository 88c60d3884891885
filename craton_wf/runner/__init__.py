"""The runner: claims builds and runs from the database and drives them to the end."""
