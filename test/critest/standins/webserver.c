/* Stand-in for critest's nginx and httpd images: answers every request on
 * $HTTP_PORT (80 by default) with a small page, writes its PID to
 * /var/run/nginx.pid, and exits on SIGTERM. Installed as /usr/sbin/nginx it
 * runs itself again as "nginx: master process ..." because critest reads
 * that from /proc/1/cmdline. Built static by test/critest. */
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static const char page[] =
	"<html><head><title>Welcome to nginx!</title></head>"
	"<body><h1>Welcome to nginx!</h1><p>netshim's critest stand-in.</p></body></html>\n";

static void stop(int sig) { (void)sig; _exit(0); }

int main(int argc, char **argv) {
	(void)argc;
	const char *slash = strrchr(argv[0], '/');
	const char *name = slash ? slash + 1 : argv[0];
	if (strcmp(name, "nginx") == 0 && strstr(argv[0], "master process") == NULL) {
		char *again[] = {"nginx: master process /usr/sbin/nginx", NULL};
		execv("/usr/sbin/nginx", again);
		perror("execv");
		return 1;
	}
	const char *port_env = getenv("HTTP_PORT");
	int port = port_env ? atoi(port_env) : 80;

	mkdir("/var/run", 0755);
	FILE *pidfile = fopen("/var/run/nginx.pid", "w");
	if (pidfile) {
		fprintf(pidfile, "%d\n", (int)getpid());
		fclose(pidfile);
	}
	signal(SIGTERM, stop);
	signal(SIGINT, stop);
	signal(SIGQUIT, stop);
	signal(SIGPIPE, SIG_IGN);

	int lsock = socket(AF_INET, SOCK_STREAM, 0);
	int on = 1;
	setsockopt(lsock, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
	if (bind(lsock, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(lsock, 64) != 0) {
		perror("listen");
		return 1;
	}
	/* critest looks for "httpd" in the httpd image's log. */
	fprintf(stderr, "httpd stand-in (%s) serving on port %d\n", argv[0], port);

	char reply[1024], request[4096];
	int reply_len = snprintf(reply, sizeof reply,
		"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
		strlen(page), page);
	for (;;) {
		int conn = accept(lsock, NULL, NULL);
		if (conn < 0)
			continue;
		if (read(conn, request, sizeof request) > 0 && write(conn, reply, reply_len) < 0)
			perror("write");
		close(conn);
	}
}
