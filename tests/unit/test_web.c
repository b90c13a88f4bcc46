/* Unit tests of the web board's decisions (daemon/web-pure.c): listen
 * addresses, Host names (DNS rebinding), routes and methods, what a screen
 * patients can see hides, which slow client goes, and the page's nonce. */
#include <stdlib.h>
#include <string.h>

#include "web.h"
#include "unit.h"

static void test_listen(void)
{
	static const struct { const char *in, *host; int port; } good[] = {
		{ "127.0.0.1:8080", "127.0.0.1", 8080 }, { "0.0.0.0:80", "0.0.0.0", 80 },
		{ "[::1]:8080", "::1", 8080 }, { "[::]:0", "::", 0 },
		{ "board.clinic.lan:8080", "board.clinic.lan", 8080 },
		{ "localhost:65535", "localhost", 65535 },
	};
	static const char *const bad[] = {
		"", "8080", ":8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:123456", "::1:8080", "[::1]8080", "[::1]", "[nope]:80",
		"[]:80", "bad_host:80", "a b:80", "host.-x:80", "127.0.0.1:80 ", "-a:80",
	};
	char host[256];
	const char *why;
	int port;

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		why = NULL;
		port = -1;
		CHECK_EQ(web_parse_listen(good[i].in, host, sizeof host, &port, &why), 0);
		CHECK_STR(host, good[i].host);
		CHECK_EQ(port, good[i].port);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		CHECK_EQ(web_parse_listen(bad[i], host, sizeof host, &port, &why), -1);
		CHECK(why && *why);
	}
	/* The host must fit. */
	CHECK_EQ(web_parse_listen("board.lan:80", host, 5, &port, &why), -1);
}

static void test_hostname(void)
{
	char long_label[80], long_name[300];

	CHECK(web_valid_hostname("board"));
	CHECK(web_valid_hostname("board.clinic.lan"));
	CHECK(web_valid_hostname("a-1.b2"));
	CHECK(!web_valid_hostname(""));
	CHECK(!web_valid_hostname("-a"));
	CHECK(!web_valid_hostname("a-"));
	CHECK(!web_valid_hostname("a..b"));
	CHECK(!web_valid_hostname(".a"));
	CHECK(!web_valid_hostname("a.-b"));
	CHECK(!web_valid_hostname("a_b"));
	CHECK(!web_valid_hostname("a:80"));
	CHECK(!web_valid_hostname("a b"));
	memset(long_label, 'a', 64);
	long_label[64] = '\0';
	CHECK(!web_valid_hostname(long_label));
	long_label[63] = '\0';
	CHECK(web_valid_hostname(long_label));
	memset(long_name, 'a', 254);
	for (int i = 10; i < 254; i += 10)
		long_name[i] = '.';
	long_name[254] = '\0';
	CHECK(!web_valid_hostname(long_name));
	long_name[253] = '\0';
	CHECK(web_valid_hostname(long_name));
}

static void test_host_header(void)
{
	const char *names[] = { "board.clinic.lan", "reception." };
	static const char *const yes[] = {
		"127.0.0.1", "127.0.0.1:8080", "192.168.1.10:80", "[::1]", "[::1]:8080",
		"[fe80::1]:1", "localhost", "LOCALHOST:8080", "localhost.", "board.clinic.lan",
		"Board.Clinic.LAN:8080", "board.clinic.lan.", "reception", "reception.:443",
	};
	static const char *const no[] = {
		"", "evil.com", "evil.com:8080", "board.clinic.lan.evil.com", "clinic.lan",
		"127.0.0.1:", "127.0.0.1:80:80", "[::1", "::1", "[zz]:80", "board.clinic.lan:x",
		"localhost:123456", "a b", "board.clinic.lan/", "receptio", "127.0.0.1 ",
		"1.2.3.4.5",
	};

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		CHECK(web_host_allowed(yes[i], names, 2));
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		CHECK(!web_host_allowed(no[i], names, 2));
	CHECK(!web_host_allowed(NULL, names, 2));
	/* Without names only IP literals and localhost. */
	CHECK(web_host_allowed("10.0.0.1:8080", NULL, 0));
	CHECK(!web_host_allowed("board.clinic.lan", NULL, 0));
}

static void test_route(void)
{
	static const char *const paths[] = { "/", "/api/status", "/events" };
	static const enum web_route routes[] = { WEB_PAGE, WEB_STATUS, WEB_EVENTS };
	static const char *const other[] = {
		"", "/index.html", "/api/status/", "/api", "/events/", "/EVENTS", "//",
		"/api/status/../status", "/%61pi/status", "/favicon.ico", "*",
	};

	for (size_t i = 0; i < 3; i++) {
		CHECK_EQ(web_route(WEB_GET, paths[i]), routes[i]);
		CHECK_EQ(web_route(WEB_HEAD, paths[i]), routes[i]);
		CHECK_EQ(web_route(WEB_OTHER, paths[i]), WEB_BAD_METHOD);
	}
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
		for (int m = WEB_GET; m <= WEB_OTHER; m++)
			CHECK_EQ(web_route((enum web_method)m, other[i]), WEB_NOT_FOUND);
	CHECK_EQ(web_route(WEB_GET, NULL), WEB_NOT_FOUND);
}

static void test_room_view(void)
{
	json_t *room = json_pack("{s:s,s:s,s:[s],s:i}", "id", "1", "patient", "A1043", "flags",
				 "pacemaker", "needles", 6);
	json_t *v = web_room_view(room, 1);

	CHECK(v == room); /* shared: nothing hidden */
	json_decref(v);
	v = web_room_view(room, 0);
	CHECK(v != room);
	CHECK(json_is_null(json_object_get(v, "patient")));
	CHECK_EQ(json_array_size(json_object_get(v, "flags")), 0);
	CHECK_EQ(json_integer_value(json_object_get(v, "needles")), 6);
	CHECK_STR(json_string_value(json_object_get(v, "id")), "1");
	/* The shared object is left as it was. */
	CHECK_STR(json_string_value(json_object_get(room, "patient")), "A1043");
	CHECK_EQ(json_array_size(json_object_get(room, "flags")), 1);
	json_decref(v);
	json_decref(room);
	/* No such keys: nothing added. */
	room = json_pack("{s:s}", "id", "2");
	v = web_room_view(room, 0);
	CHECK(!json_object_get(v, "patient"));
	json_decref(v);
	json_decref(room);
}

static void test_drop_pick(void)
{
	size_t none[1] = { 0 };
	size_t ok[3] = { 100, 200, 300 };
	size_t one_over[3] = { 100, 1001, 300 };
	size_t two_over[3] = { 2000, 1001, 300 };
	size_t total_over[4] = { 900, 950, 800, 900 };
	size_t at_limits[2] = { 1000, 1000 };

	CHECK_EQ(web_drop_pick(none, 0, 1000, 2000), -1);
	CHECK_EQ(web_drop_pick(none, 1, 1000, 2000), -1);
	CHECK_EQ(web_drop_pick(ok, 3, 1000, 2000), -1);
	CHECK_EQ(web_drop_pick(one_over, 3, 1000, 2000), 1);
	CHECK_EQ(web_drop_pick(two_over, 3, 1000, 2000), 0);
	CHECK_EQ(web_drop_pick(total_over, 4, 1000, 2000), 1); /* the largest */
	CHECK_EQ(web_drop_pick(at_limits, 2, 1000, 2000), -1); /* at, not over */
	CHECK_EQ(web_drop_pick(at_limits, 2, 1000, 1999), 0);
}

static void test_page_render(void)
{
	static const char page[] = "<style nonce=\"@NONCE@\">@media{}</style><script nonce=\"@NONCE@\">";
	size_t len = 0;
	char *out = web_page_render(page, strlen(page), "0123456789abcdef0123456789abcdef", &len);

	CHECK_STR(out, "<style nonce=\"0123456789abcdef0123456789abcdef\">@media{}</style>"
		       "<script nonce=\"0123456789abcdef0123456789abcdef\">");
	CHECK_EQ(len, strlen(out));
	free(out);
	out = web_page_render("@NONCE", 6, "x", &len);
	CHECK_STR(out, "@NONCE");
	free(out);
	out = web_page_render("@NONCE@@NONCE@", 14, "", &len);
	CHECK_STR(out, "");
	CHECK_EQ(len, 0);
	free(out);
}

int main(void)
{
	test_listen();
	test_hostname();
	test_host_header();
	test_route();
	test_room_view();
	test_drop_pick();
	test_page_render();
	return unit_report("test_web");
}
