# The real-time pulse path (issue 19): its unit test links the thread's module,
# and `make tsan` runs that test with its thread under ThreadSanitizer.
$(BUILD)/tests/test_rtpulse: tests/unit/test_rtpulse.c $(PURE_OBJ) $(BUILD)/daemon/rtpulse.o \
  tests/unit/unit.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(PURE_OBJ) $(BUILD)/daemon/rtpulse.o $(LDLIBS_ACU)

TSAN_BIN := build/tsan/test_rtpulse
.PHONY: tsan
tsan: $(BUILD)/.deps
	@mkdir -p $(dir $(TSAN_BIN))
	$(CC) $(WARN) -g -O1 -fsanitize=thread -D_GNU_SOURCE $(LFS_FLAGS) -Iinclude $(PKG_CFLAGS) \
	  -o $(TSAN_BIN) tests/unit/test_rtpulse.c daemon/rtpulse.c daemon/train.c daemon/sched.c \
	  -pthread
	$(TSAN_BIN) threads
