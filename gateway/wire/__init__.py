"""Transport and stream decoding: HTTP sends, SSE and stream events, reasoning split, guarded URL fetches."""
