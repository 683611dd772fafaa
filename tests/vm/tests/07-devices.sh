# The v2 device controller is an eBPF program: with the default rules
# (deny all, then the runtime's default devices) the container cannot open
# a block device node present in its rootfs; an allow rule lets it.
mkdir -p "$ROOTFS/vm"
if [ ! -e /sys/block/ram0/dev ]; then
        skip devices "no /dev/ram0 (brd) in the VM"
        exit 0
fi
dev=$(cat /sys/block/ram0/dev)
mknod "$ROOTFS/vm/blk" b "${dev%:*}" "${dev#*:}"

# open_as NAME DEVICE_RULES: run `payload open /vm/blk r` and /dev/null w
open_as() {
        _b=$WORK/$1 _id=$(new_id "$1")
        script opens <<'SH'
/bin/payload open /vm/blk r
/bin/payload open /dev/null w
SH
        mkbundle "$_b" '"/bin/sh","/vm/opens.sh"' || return 1
        if [ -n "$2" ]; then
                set_devices "$_b" "$2" || { echo "set_devices failed"; cat "$_b/config.json"; return 1; }
        fi
        rt run --bundle "$_b" "$_id" < /dev/null > "$_b/out" 2> "$_b/err"
        _rc=$?
        destroy "$_id"
        blk=$(sed -n 1p "$_b/out") null=$(sed -n 2p "$_b/out")
        [ $_rc = 0 ]
}

if open_as default ""; then
        case $blk in
        *'"ok":false'*'"errno":1'*) pass devices.default-deny "block $dev: $blk" ;;
        *) fail devices.default-deny "block $dev in the rootfs, default rules: $blk" ;;
        esac
        case $null in
        *'"ok":true'*) pass devices.default-null "/dev/null: $null" ;;
        *) fail devices.default-null "/dev/null: $null" ;;
        esac
elif not_supported "$WORK/default/err"; then
        skip devices.default-deny "$(rt_err "$WORK/default/err")"
else
        fail devices.default-deny "run: $(rt_err "$WORK/default/err")"
fi

if open_as allow "{\"allow\": false, \"access\": \"rwm\"}, {\"allow\": true, \"type\": \"b\", \"major\": ${dev%:*}, \"minor\": ${dev#*:}, \"access\": \"r\"}"; then
        case $blk in
        *'"ok":true'*) pass devices.allow-rule "block $dev allowed: $blk" ;;
        *) fail devices.allow-rule "block $dev with an allow rule: $blk" ;;
        esac
elif not_supported "$WORK/allow/err"; then
        skip devices.allow-rule "$(rt_err "$WORK/allow/err")"
else
        fail devices.allow-rule "run: $(rt_err "$WORK/allow/err")"
fi
rm -f "$ROOTFS/vm/blk"
