/* acuctl's terminal: its size, the alternate screen and key mode of the live
 * board, and the signals that must give the terminal back on every way out.
 * The state here is only what signal handlers must reach; the rest of acuctl
 * sees it through these functions. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "acuctl.h"

static volatile sig_atomic_t screen_active; /* alternate screen entered */
static volatile sig_atomic_t tio_changed;   /* stdin echo and line mode off */
static volatile sig_atomic_t got_winch, got_cont; /* resized; back from a stop */
static struct termios saved_tio;

/* Async-signal-safe (write, tcsetattr): handlers call it as well as atexit. */
void term_restore(void)
{
	static const char leave[] = "\033[0m\033[?25h\033[?1049l";
	ssize_t n;

	if (tio_changed) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tio);
		tio_changed = 0;
	}
	if (screen_active) {
		n = write(STDOUT_FILENO, leave, sizeof leave - 1);
		(void)n;
		screen_active = 0;
	}
}

void term_enter(void)
{
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
	struct termios t;
	ssize_t n;

	/* Keys typed at the board are commands ('q'), not text to echo over it. */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_tio) == 0) {
		t = saved_tio;
		t.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
			tio_changed = 1;
	}
	screen_active = 1;
	n = write(STDOUT_FILENO, enter, sizeof enter - 1);
	(void)n;
}

static void on_quit(int sig)
{
	(void)sig;
	term_restore();
	_exit(RC_DONE);
}

static void on_winch(int sig)
{
	(void)sig;
	got_winch = 1;
}

/* Ctrl-Z: give the shell its screen back, then stop for real. The stop
 * happens inside the handler (SIGTSTP unblocked, default action), so when it
 * returns the process has been continued and the board comes back. */
static void on_tstp(int sig)
{
	struct sigaction sa, old;
	sigset_t set;
	int saved = errno;

	term_restore();
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(sig, &sa, &old);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigaction(sig, &old, NULL);
	got_cont = 1;
	errno = saved;
}

static void set_handler(int sig, void (*fn)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = fn;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: poll() wakes up to redraw */
	sigaction(sig, &sa, NULL);
}

/* Ctrl-C, kill and a closed terminal end acuctl with the terminal restored. */
void term_catch_quit(void)
{
	set_handler(SIGINT, on_quit);
	set_handler(SIGTERM, on_quit);
	set_handler(SIGHUP, on_quit);
}

/* The board also follows the terminal's size and survives Ctrl-Z. */
void term_catch_board(void)
{
	atexit(term_restore);
	term_catch_quit();
	set_handler(SIGWINCH, on_winch);
	set_handler(SIGTSTP, on_tstp);
}

/* Whether the terminal was resized since the last call. */
int term_resized(void)
{
	int r = got_winch;

	got_winch = 0;
	return r;
}

/* Whether acuctl was stopped (Ctrl-Z) and continued since the last call. */
int term_continued(void)
{
	int r = got_cont;

	got_cont = 0;
	return r;
}

/* 80 when stdout is not a terminal. */
int term_cols(void)
{
	struct winsize ws;

	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col)
		return ws.ws_col;
	return 80;
}

int term_rows(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row)
		return ws.ws_row;
	return 24;
}
