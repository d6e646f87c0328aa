// Placeholder entry point; the host is wired in Hosting/.
return 0;
