# SPDX-License-Identifier: Apache-2.0
# Helpers for the host-side part of a lab scenario (busybox sh). Sourced by
# run-scenarios, which runs each scenario in its own process group with
# these variables set:
#   LAB_DIR       the lab tree (/lab in the emulated host; a work dir in
#                 direct mode): bin/, guest/vmlinuz, guest/initrd, scenarios/
#   LAB_SCENARIO  the scenario's name        LAB_WORK  its scratch dir
#   LAB_VMM       keel | qemu-microvm | qemu-q35 (tests/lab/run --vmm)
# Results travel as marked lines on stdout (the emulated host's serial
# console), parsed by tests/lab/run; see tests/lab/README.md.

# --- results -----------------------------------------------------------
lab_pass() {
	echo PASS >"$LAB_WORK/result"
	exit 0
}

lab_fail() {
	echo "FAIL: $*" >"$LAB_WORK/result"
	vmm_kill
	exit 1
}

# lab_figure KEY VALUE UNIT: a measurement for bench/run.
lab_figure() {
	echo "KEEL-LAB: FIGURE $LAB_SCENARIO $1 $2 $3"
}

lab_note() {
	echo "KEEL-LAB: NOTE $LAB_SCENARIO $*"
}

# --- starting a VMM ----------------------------------------------------
# vmm_start VMM GUEST CPUS MEM_MIB [--no-reboot] [--loud] [--raw]
#           [--append ARGS] [--disk SPEC]... [--net SPEC]... [--rng] [--balloon]
# Starts VMM (keel, qemu-microvm, qemu-q35) booting the lab's guest kernel
# and initramfs, with the guest init running scenarios/GUEST.guest. Its
# console (stdout and stderr) is timestamped line by line (lab_stamp) into
# $VMM_LOG and echoed to our stdout; its stdin is a fifo that vmm_type
# writes to. The first log line, "VMM-START",
# is stamped just before the VMM is started. Sets VMM_PID. The guest
# kernel is "quiet" (errors, warnings, oopses and stall reports still
# print): every character on the serial console costs two VM exits, and the
# emulated host's rare nested-SVM faults (tests/lab/README.md) strike while
# a guest prints; --loud keeps its whole boot log (make demo). --append
# ARGS adds more (for the guest script: /proc/cmdline); --raw logs and
# echoes the console without
# timestamps (make demo, where a person reads it).
# --disk, --net and --rng take keel-vmm's syntax (keel-vmm --help; no
# spaces or commas inside values) and give QEMU the equivalent virtio-pci
# devices (vmm_qemu_devices); --balloon is keel-vmm's `--balloon on` and
# QEMU's virtio-balloon-pci. $LAB_KEEL_ARGS and $LAB_QEMU_ARGS, when set,
# go to that VMM as they are.
vmm_start() {
	_vmm=$1 _guest=$2 _cpus=$3 _mem=$4
	shift 4
	_noreboot="" _quiet=1 _stamp=lab_stamp _devs="" _append=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--no-reboot) _noreboot=1 ;;
		--loud) _quiet="" ;;
		--raw) _stamp=cat ;;
		--disk | --net)
			[ $# -ge 2 ] || lab_fail "vmm_start: $1 needs a value"
			_devs="$_devs $1 $2"
			shift
			;;
		--rng) _devs="$_devs --rng" ;;
		--balloon) _devs="$_devs --balloon on" ;;
		--append)
			[ $# -ge 2 ] || lab_fail "vmm_start: $1 needs a value"
			_append="$_append $2"
			shift
			;;
		*) lab_fail "vmm_start: unknown option $1" ;;
		esac
		shift
	done
	if [ "$_vmm" != keel ] && [ -n "$_devs" ]; then
		_devs=$(vmm_qemu_devices $_devs) || lab_fail "vmm_start: $_devs"
	fi
	# keel.modules: the guest kernel modules are the running scenario's
	# (its "# guest-modules:"), whichever guest script it boots.
	_cmdline="console=ttyS0 keel.scenario=$_guest keel.modules=$LAB_SCENARIO"
	[ -n "$_quiet" ] && _cmdline="$_cmdline quiet"
	_cmdline="$_cmdline$_append"
	# tests/lab/run --guest-cmdline / --keel-args, for debugging.
	[ -n "${LAB_GUEST_APPEND:-}" ] && _cmdline="$_cmdline $LAB_GUEST_APPEND"
	VMM_NAME=$_vmm
	VMM_LOG=$LAB_WORK/console.log
	VMM_RC=""
	rm -f "$LAB_WORK/in" "$LAB_WORK/out" "$VMM_LOG"
	mkfifo "$LAB_WORK/in" "$LAB_WORK/out"
	$_stamp <"$LAB_WORK/out" | tee "$VMM_LOG" &
	VMM_READER=$!
	exec 4>"$LAB_WORK/out"
	# Read-write so opening never blocks and the VMM never sees EOF.
	exec 3<>"$LAB_WORK/in"
	echo "VMM-START $_vmm cpus=$_cpus memory=${_mem}M" >&4
	case "$_vmm" in
	keel)
		[ -x "$LAB_DIR/bin/keel-vmm" ] || lab_fail "no keel-vmm in the lab (build it first)"
		"$LAB_DIR/bin/keel-vmm" --kernel "$LAB_DIR/guest/vmlinuz" \
			--initrd "$LAB_DIR/guest/initrd" --cmdline "$_cmdline" \
			--cpus "$_cpus" --memory "${_mem}M" --console stdio \
			${_noreboot:+--no-reboot} $_devs ${LAB_KEEL_ARGS:-} <&3 >&4 2>&4 &
		;;
	qemu-microvm | qemu-q35)
		command -v qemu-system-x86_64 >/dev/null ||
			lab_fail "QEMU is not in this lab image (scenario needs '# needs: qemu')"
		# microvm leaves its CMOS RTC out under KVM unless asked; keel-vmm
		# has one, and without it the guest's rtc_cmos probe stalls ~4 s
		# and its date comes only from kvmclock.
		_machine=${_vmm#qemu-}
		[ "$_machine" = microvm ] && _machine=microvm,rtc=on
		# microvm has PCI (and so virtio-pci) only when asked.
		[ "$_machine" = microvm,rtc=on ] && [ -n "$_devs" ] && _machine=$_machine,pcie=on
		"qemu-system-x86_64" -M "$_machine" -accel kvm -cpu host \
			-smp "$_cpus" -m "$_mem" -nodefaults -no-user-config \
			-display none -serial stdio \
			-kernel "$LAB_DIR/guest/vmlinuz" -initrd "$LAB_DIR/guest/initrd" \
			-append "$_cmdline" ${_noreboot:+-no-reboot} $_devs ${LAB_QEMU_ARGS:-} <&3 >&4 2>&4 &
		;;
	*) lab_fail "unknown VMM '$_vmm' (keel, qemu-microvm, qemu-q35)" ;;
	esac
	VMM_PID=$!
	exec 4>&-
}

# vmm_qemu_devices [--disk SPEC | --net SPEC | --rng]...: QEMU's
# arguments for the same devices: virtio-blk-pci on a -drive with the same
# file, format, cache mode, I/O engine (keel's defaults, writeback and
# io_uring, spelt out: QEMU's own engine default is threads), read-only flag,
# serial and queue count; virtio-net-pci on the same tap (no vhost; no option
# ROM, which the guest does not need); virtio-rng-pci fed by /dev/urandom.
# keel's aio=sync has no QEMU counterpart: QEMU gets threads, its nearest.
# A disk's average limits (iops, iops-rd, iops-wr, bw, bw-rd, bw-wr) become
# QEMU's throttling.iops-total, -read, -write and throttling.bps-*; their
# bursts and peaks have no exact counterpart (QEMU's -max is a rate held for
# -max-length seconds) and are refused.
vmm_qemu_devices() {
	_qn=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--disk)
			echo "$2" | awk -F, -v n="$_qn" '
			{
				fmt = "raw"; cache = "writeback"; aio = "io_uring"; dopt = ""; dev = ""
				throttle["iops"] = "iops-total"; throttle["iops-rd"] = "iops-read"; throttle["iops-wr"] = "iops-write"
				throttle["bw"] = "bps-total"; throttle["bw-rd"] = "bps-read"; throttle["bw-wr"] = "bps-write"
				for (i = 1; i <= NF; i++) {
					k = $i; sub(/=.*/, "", k); v = substr($i, length(k) + 2)
					if (k == "path") file = v
					else if (k == "format") fmt = v
					else if (k == "cache") cache = v
					else if (k == "aio") aio = v
					else if (k == "readonly") dopt = dopt ((v == "on") ? ",readonly=on" : "")
					else if (k == "serial") dev = dev ",serial=" v
					else if (k == "queues") dev = dev ",num-queues=" v
					else if (k in throttle) {
						m = 1
						if (v ~ /[KMG]$/) { m = (v ~ /K$/) ? 1024 : (v ~ /M$/) ? 1048576 : 1073741824; v = substr(v, 1, length(v) - 1) }
						dopt = dopt ",throttling." throttle[k] "=" sprintf("%.0f", v * m)
					}
					else { print "--disk key " k " has no QEMU counterpart here"; exit 1 }
				}
				if (aio == "sync") aio = "threads"
				printf " -drive if=none,id=disk%d,file=%s,format=%s,cache=%s,aio=%s%s", n, file, fmt, cache, aio, dopt
				printf " -device virtio-blk-pci,drive=disk%d%s", n, dev
			}' || return 1
			shift
			;;
		--net)
			echo "$2" | awk -F, -v n="$_qn" '
			{
				mac = ""
				for (i = 1; i <= NF; i++) {
					k = $i; sub(/=.*/, "", k); v = substr($i, length(k) + 2)
					if (k == "tap") tap = v
					else if (k == "mac") mac = ",mac=" v
					else { print "--net key " k " has no QEMU counterpart here"; exit 1 }
				}
				printf " -netdev tap,id=net%d,ifname=%s,script=no,downscript=no,vhost=off", n, tap
				printf " -device virtio-net-pci,netdev=net%d%s,romfile=", n, mac
			}' || return 1
			shift
			;;
		--rng)
			printf ' -object rng-random,id=rng%d,filename=/dev/urandom' "$_qn"
			printf ' -device virtio-rng-pci,rng=rng%d' "$_qn"
			;;
		--balloon)
			[ "$2" = on ] || { echo "--balloon $2 has no QEMU counterpart here"; return 1; }
			printf ' -device virtio-balloon-pci'
			shift
			;;
		esac
		_qn=$((_qn + 1))
		shift
	done
	echo
}

# --- host-side devices -------------------------------------------------
# lab_tap NAME: a fresh persistent tap NAME, up, a port of the lab bridge
# labbr0, which holds the lab host's address 10.0.2.1/24 (LAB_NET_HOST) and
# is made on first use with no STP forwarding delay. Guests use 10.0.2.x.
# The VMM opens the existing tap (keel-vmm and QEMU's -netdev tap both can);
# lab_tap_del NAME removes it.
LAB_NET_HOST=10.0.2.1
lab_tap() {
	# The same MAC on every host: a guest migrated to another host finds
	# its gateway at the address its ARP cache has.
	if [ ! -d /sys/class/net/labbr0 ]; then
		brctl addbr labbr0 && echo 0 >/sys/class/net/labbr0/bridge/forward_delay &&
			ifconfig labbr0 hw ether 52:54:00:00:02:01 &&
			ifconfig labbr0 "$LAB_NET_HOST" netmask 255.255.255.0 up ||
			lab_fail "cannot set up the lab bridge labbr0"
	fi
	[ -d "/sys/class/net/$1" ] && lab_tap_del "$1"
	tunctl -t "$1" >/dev/null && brctl addif labbr0 "$1" && ifconfig "$1" up ||
		lab_fail "cannot create tap $1 on labbr0"
}

# lab_ping ADDR: whether this host reaches ADDR within ~30 s. One lost
# echo or a slow first ARP in the emulated host is not a failure; a guest
# that never answers is.
lab_ping() {
	_n=10
	while [ "$_n" -gt 0 ]; do
		ping -c 1 -W 3 "$1" >/dev/null 2>&1 && return 0
		_n=$((_n - 1))
	done
	return 1
}

lab_tap_del() {
	tunctl -d "$1" >/dev/null 2>&1
}

# --- the peer host ------------------------------------------------------
# Scenarios with "needs: peer" run on the main of two emulated hosts linked
# by a network (LAB_MAIN_ADDR, LAB_PEER_ADDR) and both seeing one disk,
# LAB_SHARED_DEV (each host's name for it). The peer runs nothing of its
# own: the scenario drives it with peer_run. In direct mode (hardware
# virtualization, one machine) the peer is this machine: LAB_PEER_LOCAL is
# set, LAB_PEER_ADDR is 127.0.0.1 and peer_run runs the text here (in
# LAB_PEER_WORK, which is /tmp/peer on a real peer).

# peer_run SHELL_TEXT: runs SHELL_TEXT on the peer host, with lab.sh's
# helpers, in its /tmp/peer; prints its output (stdout and stderr) and
# returns its exit status (255: the peer did not answer). A program it
# leaves running must write to a file, not to its stdout.
peer_run() {
	if [ -n "${LAB_PEER_LOCAL:-}" ]; then
		mkdir -p "$LAB_PEER_WORK"
		(cd "$LAB_PEER_WORK" && LAB_WORK=$LAB_PEER_WORK && eval "$1") 2>&1
		return
	fi
	_pout=$(wget -q -O - --post-data "$1" \
		"http://$LAB_PEER_ADDR:$LAB_PEER_PORT/cgi-bin/run" 2>&1) || {
		echo "the peer host did not answer: $_pout"
		return 255
	}
	_prc=$(echo "$_pout" | sed -n 's/^PEER-EXIT=//p' | tail -n 1)
	echo "$_pout" | sed '/^PEER-EXIT=/d'
	return "${_prc:-255}"
}

# peer_need: waits (up to 3 minutes: the peer boots alongside this host)
# until the peer host answers; fails the scenario if it does not.
peer_need() {
	[ -n "${LAB_PEER_ADDR:-}" ] || lab_fail "no peer host (the scenario needs '# needs: peer')"
	_n=180
	until peer_run true >/dev/null 2>&1; do
		[ "$_n" -gt 0 ] || lab_fail "the peer host does not answer at $LAB_PEER_ADDR: $(peer_run true)"
		sleep 1
		_n=$((_n - 1))
	done
}

# lab_stamp: copies stdin to stdout a line at a time (flushed, so watchers
# see each line at once), each prefixed by the time it was read: epoch
# seconds with 10 ms resolution, from /proc/uptime against one date(1)
# taken at start (busybox ts and date have no better clock and ts buffers).
lab_stamp() {
	awk -v epoch="$(date +%s)" '
	function now(  u) { getline u <"/proc/uptime"; close("/proc/uptime"); split(u, a, " "); return a[1] }
	BEGIN { up0 = now() }
	{ printf "%.2f %s\n", epoch + now() - up0, $0; fflush() }'
}

# vmm_type TEXT: one line typed on the VMM's console.
vmm_type() {
	printf '%s\n' "$*" >&3
}

# vmm_wait SECONDS: waits for the VMM to exit; sets VMM_RC. Fails (1) on
# timeout, leaving the VMM running.
vmm_wait() {
	_limit=$(($1 * 5))
	while [ "$_limit" -gt 0 ] && kill -0 "$VMM_PID" 2>/dev/null &&
		! _vmm_zombie; do
		sleep 0.2
		_limit=$((_limit - 1))
	done
	if kill -0 "$VMM_PID" 2>/dev/null && ! _vmm_zombie; then
		return 1
	fi
	wait "$VMM_PID"
	VMM_RC=$?
	wait "$VMM_READER" 2>/dev/null
	exec 3>&-
	return 0
}

_vmm_zombie() {
	[ "$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/"$VMM_PID"/status 2>/dev/null)" = Z ]
}

vmm_kill() {
	[ -n "${VMM_PID:-}" ] || return 0
	[ -z "$VMM_RC" ] || return 0
	kill -KILL "$VMM_PID" 2>/dev/null
	wait "$VMM_PID" 2>/dev/null
	VMM_RC=killed
}

# vmm_expect_exit SECONDS CODE: the VMM must end by itself within SECONDS
# with exit code CODE.
vmm_expect_exit() {
	vmm_wait "$1" || lab_fail "$VMM_NAME still running ${1}s after $2"
	[ "$VMM_RC" = "$3" ] || lab_fail "$VMM_NAME exited $VMM_RC after $2, expected $3"
}

# --- watching the console ----------------------------------------------
# lab_wait PATTERN SECONDS [COUNT]: waits until COUNT (default 1) console
# lines match the grep -E PATTERN. Returns 1 early, with the reason in
# LAB_WHY, if the VMM exits or the guest kernel panics.
lab_wait() {
	_pat=$1 _count=${3:-1}
	_limit=$(($2 * 5))
	LAB_WHY=""
	while :; do
		_n=$(grep -cE "$_pat" "$VMM_LOG" 2>/dev/null)
		[ "${_n:-0}" -ge "$_count" ] && return 0
		if grep -qE 'Kernel panic|KVM internal error' "$VMM_LOG" 2>/dev/null; then
			LAB_WHY="guest failure: $(grep -m1 -oE '(Kernel panic|KVM internal error).*' "$VMM_LOG" | cut -c1-120)"
			return 1
		fi
		if ! kill -0 "$VMM_PID" 2>/dev/null || _vmm_zombie; then
			vmm_wait 1
			LAB_WHY="$VMM_NAME exited with $VMM_RC before '$_pat' (#$_count)"
			return 1
		fi
		if [ "$_limit" -le 0 ]; then
			LAB_WHY="no '$_pat' (#$_count) within ${2}s"
			return 1
		fi
		sleep 0.2
		_limit=$((_limit - 1))
	done
}

# lab_expect PATTERN SECONDS [COUNT]: lab_wait or fail the scenario.
lab_expect() {
	lab_wait "$@" && return 0
	vmm_dump_state
	lab_fail "$LAB_WHY"
}

# vmm_dump_state: for a VMM that stopped making progress, each thread's
# state, kernel wait channel and CPU time (utime+stime ticks) into the log.
vmm_dump_state() {
	[ -n "${VMM_PID:-}" ] && [ -z "$VMM_RC" ] && [ -d /proc/"$VMM_PID" ] || return 0
	for _t in /proc/"$VMM_PID"/task/*; do
		echo "KEEL-LAB: NOTE $LAB_SCENARIO $VMM_NAME thread ${_t##*/}" \
			"$(cut -d' ' -f2,3,14,15 "$_t/stat" 2>/dev/null) wchan=$(cat "$_t/wchan" 2>/dev/null)"
	done
}

# guest_value KEY: the value of the last "KEEL-GUEST: KEY=VALUE" line.
guest_value() {
	sed -n "s/^[0-9.]* KEEL-GUEST: $1=//p" "$VMM_LOG" | tail -n 1 | tr -d '\r'
}

# line_time PATTERN [N]: host timestamp (epoch s.us) of the Nth line matching
# the grep -E PATTERN.
line_time() {
	grep -E "$1" "$VMM_LOG" | sed -n "${2:-1}p" | cut -d' ' -f1
}

# smaps_private_kb PID EXCLUDE: private resident kB (Private_Clean +
# Private_Dirty) of PID's mappings, skipping the guest RAM mapping: the one
# whose smaps header contains EXCLUDE, or when EXCLUDE is "size:KB" the
# largest mapping of at least KB kB. Prints "TOTAL ANON EXCLUDED": ANON is
# the part in mappings without a file (heap, stacks, anonymous mmap);
# TOTAL is -1 when no mapping matched EXCLUDE.
smaps_private_kb() {
	awk -v excl="$2" '
	function flush() { if (name != "") { n++; nm[n] = name; sz[n] = size; pv[n] = priv; an[n] = anon } }
	/^[0-9a-f]+-[0-9a-f]+ / { flush(); name = $0; anon = ($5 == 0); size = 0; priv = 0; next }
	/^Size:/ { size = $2 }
	/^Private_(Clean|Dirty):/ { priv += $2 }
	END {
		flush()
		skip = 0
		if (excl ~ /^size:/) {
			min = substr(excl, 6) + 0
			for (i = 1; i <= n; i++)
				if (sz[i] >= min && (skip == 0 || sz[i] > sz[skip])) skip = i
		} else {
			for (i = 1; i <= n; i++) if (index(nm[i], excl)) skip = i
		}
		total = 0; anontotal = 0
		for (i = 1; i <= n; i++) if (i != skip) { total += pv[i]; if (an[i]) anontotal += pv[i] }
		print (skip ? total : -1), anontotal, (skip ? pv[skip] : 0)
	}' /proc/"$1"/smaps
}
