"""The sandbox: start the untrusted runner beside student code, isolate it, police it, and kill it at the end."""
