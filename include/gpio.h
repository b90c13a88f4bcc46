/* The GPIO layer: one interface, two backends (gpiod: the kernel's character
 * device through libgpiod 1.6 or 2.x, one file each, picked at build time;
 * sim: simulated lines in a state file). Callers
 * speak logical levels (1 = active); each backend applies the line's polarity. */
#ifndef ACU_GPIO_H
#define ACU_GPIO_H

#include <pthread.h>
#include <stdint.h>
#include "cfg.h"

enum gpio_dir { GPIO_OUT, GPIO_IN };

struct gpio_line {
	struct acu_line spec;          /* as configured */
	enum gpio_dir dir;
	int active;                    /* last logical level written or read; -1 after a
					* failed write: unknown, written again. Written
					* by the pulse thread too: read it with gpio_active */
	void *priv;                    /* backend's handle */
	int fd;                        /* inputs: readable when an edge may be pending */
	char consumer[64];             /* what holds it, for gpioinfo: acud:ROOM:gate1 */
	char room[ACU_ID_MAX + 1];     /* "" for the heartbeat */
	char role[16];                 /* gate, pulse, alarm, interlock, call, presence, heartbeat */
	int channel;                   /* gate and pulse: 1..8; else 0 */
	int debounce_us;               /* inputs: the debounce asked for (call, presence) */
	int debounced;                 /* set by the backend: the kernel debounces it */
};

struct gpio;

struct gpio_backend {
	const char *name;
	int (*open)(struct gpio *g, const struct acu_cfg *cfg, char *err, size_t errlen);
	/* Outputs are requested at their inactive level: no glitch at start. */
	int (*request)(struct gpio *g, struct gpio_line *l, char *err, size_t errlen);
	int (*set)(struct gpio *g, struct gpio_line *l, int physical);
	/* Optional: the pulse thread's write (gpio_set_rt). It must not wait on
	 * a file system: what the backend shows outside the line may follow from
	 * a thread of its own (sim: the trace and state file). */
	int (*set_rt)(struct gpio *g, struct gpio_line *l, int physical);
	/* Reads every queued edge of an input: *edges gets how many level
	 * changes it went through since the last read. Returns the current
	 * physical level, or -1 when it cannot be read. */
	int (*read_input)(struct gpio *g, struct gpio_line *l, int *edges);
	/* The chip's offset of a configured line (a name resolved), or -1 when
	 * the chip has no such line; no request is made. */
	int (*resolve)(struct gpio *g, const struct acu_line *spec);
	/* Optional: brings what the backend shows outside up to date (sim: the
	 * trace and state file); see gpio_sync. */
	void (*sync)(struct gpio *g);
	void (*close)(struct gpio *g);
};

struct gpio {
	const struct gpio_backend *be;
	int nlines;
	struct gpio_line *lines;
	void *priv;
	/* Writes come from the event loop and the pulse thread (rtpulse.c): one
	 * at a time (the sim backend rewrites one file for every line), with
	 * priority inheritance so a loop holding it is never left behind. */
	pthread_mutex_t lock;
	int emergency;                 /* gpio_emergency_off: no lock, nothing deferred */
};

extern const struct gpio_backend gpio_backend_gpiod;
extern const struct gpio_backend gpio_backend_sim;

/* Requests every line the config names (rooms, heartbeat) and drives every
 * output inactive. Returns NULL with a message naming the line on failure. */
struct gpio *gpio_open(const struct acu_cfg *cfg, char *err, size_t errlen);
void gpio_close(struct gpio *g);
/* --check-config: the config's line names resolved on the chip without
 * requesting anything; -1 when two name one line, 1 when the chip cannot be
 * looked at (err says why), 0 when every line is named once. */
int gpio_check_names(const struct acu_cfg *cfg, char *err, size_t errlen);
struct gpio_line *gpio_find(struct gpio *g, const struct acu_line *spec);
/* The chip offset of a requested line (a name resolved), or -1. */
int gpio_offset(struct gpio *g, const struct gpio_line *l);
/* Logical level; 0 or -1 when the write failed. */
int gpio_set(struct gpio *g, struct gpio_line *l, int active);
/* The same from the pulse thread (rtpulse.c): the line is written at once,
 * and nothing on the way waits on a file. */
int gpio_set_rt(struct gpio *g, struct gpio_line *l, int active);
/* S5, latched: the input's logical level now (-1: it cannot be read), and in
 * *edges how many level changes it went through since the last read (its
 * queued edges, however short the pulse; gate_interlock() says what that
 * means). */
int gpio_read(struct gpio *g, struct gpio_line *l, int *edges);
/* After an input event has been handled and its gates cut, and before the
 * pulse thread's cuts are reported: what the backend shows outside (the sim's
 * files) catches up with every write. */
void gpio_sync(struct gpio *g);
/* Drives every output inactive; returns the number of failed writes. */
int gpio_all_off(struct gpio *g);
/* The same without the lock, for the fatal paths (a signal handler may have
 * interrupted a write that holds it). */
int gpio_emergency_off(struct gpio *g);
/* The last logical level of a line that another thread may write. */
static inline int gpio_active(const struct gpio_line *l)
{
	return __atomic_load_n(&l->active, __ATOMIC_RELAXED);
}

/* Simulated backend only: changes an input's physical level, delivered through
 * the line's fd like a real edge; level -1 makes the input unreadable (a
 * broken line) until a level is set again. Several levels are gone through
 * one after the other before the daemon can read the line (a blip shorter
 * than a read). The line is its key in the state file, or GPIO<N> for line N. */
int gpio_sim_input(struct gpio *g, const char *line, const int *levels, int n, char *err,
		   size_t errlen);
/* The simulated lines outlive a request, as real ones do: an input keeps its
 * level when the lines are requested again (a rewiring reload). This forgets
 * them: every input inactive, as at process start (the fuzz harness). */
void gpio_sim_forget(void);

#endif
