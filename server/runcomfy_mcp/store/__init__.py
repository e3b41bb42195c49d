"""The job history."""
