/* Quick start: forked producer processes feed one consumer through an anonymous
 * channel. Build: make example-c (or cc quickstart.c $(pkg-config --cflags --libs ringmpsc)). */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ringmpsc.h"

struct order {
	uint32_t producer;
	uint32_t seq;
	char item[24];
};

int main(void)
{
	struct rmpsc_config cfg = { .record_size = sizeof(struct order), .capacity = 1024, .max_producers = 4 };
	rmpsc_channel *ch;
	int rc = rmpsc_channel_create(&ch, NULL, &cfg, 0); /* NULL name: anonymous memfd */
	if (rc) {
		fprintf(stderr, "create: %s\n", rmpsc_last_error());
		return 1;
	}
	for (uint32_t id = 0; id < 3; id++) {
		if (fork() == 0) { /* the child inherits the mapping */
			rmpsc_producer *p;
			if (rmpsc_producer_register(ch, &p))
				_exit(1);
			for (uint32_t seq = 0; seq < 1000; seq++) {
				struct order o = { id, seq, "" };
				snprintf(o.item, sizeof o.item, "widget-%u", seq);
				if (rmpsc_producer_send(p, &o, sizeof o, -1)) /* -1: block while full */
					_exit(1);
			}
			rmpsc_producer_close(p);
			_exit(0);
		}
	}
	struct order batch[64];
	uint32_t next[3] = { 0 }, total = 0;
	while (total < 3000) {
		int n = rmpsc_recv(ch, batch, 64, 1000000000); /* up to 64 records, wait up to 1 s */
		if (n < 0) {
			fprintf(stderr, "recv: %s\n", rmpsc_strerror(n));
			return 1;
		}
		for (int i = 0; i < n; i++) {
			if (batch[i].seq != next[batch[i].producer]++) { /* FIFO per producer */
				fprintf(stderr, "out of order\n");
				return 1;
			}
		}
		total += (uint32_t)n;
	}
	while (wait(NULL) > 0)
		;
	rmpsc_channel_close(ch);
	printf("received %u orders from 3 processes, in order per producer\n", total);
	rmpsc_channel_release(ch);
	return 0;
}
