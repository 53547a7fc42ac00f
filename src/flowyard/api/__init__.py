"""The HTTP API server: resource routes, compatibility routes, auth, error mapping."""
