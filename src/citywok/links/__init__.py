"""Links → media files with yt-dlp, fenced off from the machine's own network (``fetch``;
``worker`` is the download child process). Used by the CLI and the web service alike."""
