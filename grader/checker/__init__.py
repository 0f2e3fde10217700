"""The trusted checker: never imports student code; scores only what it rebuilt and computed itself."""
