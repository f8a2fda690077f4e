import KeelSystem
import KeelTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The synthetic network adapter with the stock `hv_netvsc` on the other side, bridged to a TAP
/// whose host side lives in a network namespace the test creates: MAC, ping, 100 MB TCP both
/// ways with checksums, link down/up seen by the guest, two adapters on one VM. The bulk
/// transfers must use the offloads: packets far larger than the MTU on the host side of the TAP
/// (large sends) and in the guest's receive counters (coalesced chains).
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil,
                Comment(rawValue: TestEnvironment.realGuestSkipReason ?? "")))
struct NetworkTests {
    static let busybox = TestEnvironment.path(".cache/guest/busybox/busybox")

    @Test func pingAndTCPBothWaysOnLinux612() async throws { try await pingAndTCP(.linux612) }
    @Test func pingAndTCPBothWaysOnLinux61() async throws { try await pingAndTCP(.linux61) }

    func pingAndTCP(_ version: GuestImage.Version) async throws {
        let ns = try NetworkNamespace("keelnet1")
        try ns.addTap("ktap0", address: "10.77.0.1/24")
        let scratch = try ScratchDirectory("net")
        let source = scratch.path + "/to-guest.bin"
        _ = try runHostCommand(["dd", "if=/dev/urandom", "of=\(source)", "bs=1M", "count=100", "status=none"])
        let sourceSum = try ScratchDirectory.sha256(source, count: 100 << 20)
        // Host side: serve the file on 5002, checksum what arrives on 5001.
        let received = scratch.path + "/from-guest.sum"
        let sink = try ChildProcess(arguments: ns.launcher + ["sh", "-c", "\(Self.busybox) nc -l -p 5001 | sha256sum | cut -c1-64 > \(received)"])
        let server = try ChildProcess(arguments: ns.launcher + [Self.busybox, "nc", "-l", "-p", "5002", "-e", "cat", source])
        defer {
            for p in [sink, server] { p.send(signal: SIGKILL); _ = p.wait() }
        }

        var boot = GuestBoot(image: GuestImage(version))
        boot.cpus = 2
        boot.launcher = ns.launcher
        boot.keelOptions = ["--net", "tap=ktap0,mac=00:15:5d:12:34:56"]
        boot.script = """
            ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up
            i=0; while [ "$(cat /sys/class/net/eth0/carrier 2>/dev/null)" != 1 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
            ping -c 100 -A -W 5 10.77.0.1 > /tmp/ping 2>&1; tail -n 2 /tmp/ping
            echo "KEEL-GUEST ping_received=$(sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p' /tmp/ping)"
            dd if=/dev/urandom of=/tmp/out bs=1M count=100 2>/dev/null
            echo "KEEL-GUEST sent_sum=$(sha256sum /tmp/out | cut -c1-64)"
            echo "KEEL-GUEST transfer_to_host=start"
            nc 10.77.0.1 5001 -e cat /tmp/out; rm -f /tmp/out
            echo "KEEL-GUEST transfer_to_host=end"
            set -- $(grep eth0: /proc/net/dev | tr ':' ' '); b=$2; p=$3
            echo "KEEL-GUEST got_sum=$(nc 10.77.0.1 5002 | sha256sum | cut -c1-64)"
            set -- $(grep eth0: /proc/net/dev | tr ':' ' ')
            echo "KEEL-GUEST rx_bytes=$(($2 - b)) rx_packets=$(($3 - p))"
            """
        // The host side's receive counters around the guest → host transfer.
        let hostCounters = Mutex<[(bytes: Int, packets: Int)]>([])
        let sample: @Sendable () -> Void = {
            let statistics = "/sys/class/net/ktap0/statistics/"
            let bytes = (try? ns.run(["cat", statistics + "rx_bytes"]).output).flatMap { Int($0.filter(\.isNumber)) } ?? 0
            let packets = (try? ns.run(["cat", statistics + "rx_packets"]).output).flatMap { Int($0.filter(\.isNumber)) } ?? 0
            hostCounters.withLock { $0.append((bytes, packets)) }
        }
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(600),
                                         onLine: [("KEEL-GUEST transfer_to_host=start", sample), ("KEEL-GUEST transfer_to_host=end", sample)])
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.list("net_devices").contains("eth0:00:15:5d:12:34:56"), "\(report.tail)")
        #expect(report.int("ping_received") == 100, "\(report.tail)")
        #expect(report.values["got_sum"] == sourceSum, "host → guest transfer corrupted or incomplete:\n\(report.tail)")
        // The sink writes its checksum when the guest closes the connection.
        var hostSum = ""
        for _ in 0..<300 where hostSum.count < 64 {
            hostSum = String(decoding: (try? Host.readFile(received)) ?? [], as: UTF8.self).filter(\.isHexDigit)
            if hostSum.count < 64 { usleep(100_000) }
        }
        #expect(report.values["sent_sum"] == hostSum, "guest → host transfer corrupted or incomplete")
        // Offloads: average packet sizes during each bulk transfer well past the 1514-byte frame
        // (they include the few small packets of the connection itself).
        let counters = hostCounters.withLock { $0 }
        let hostBytes = counters.count == 2 ? counters[1].bytes - counters[0].bytes : 0
        let hostPackets = counters.count == 2 ? counters[1].packets - counters[0].packets : 0
        let guestBytes = report.int("rx_bytes") ?? 0, guestPackets = report.int("rx_packets") ?? 0
        print("MEASURE network \(version): guest→host \(hostBytes / max(hostPackets, 1)) B/packet, host→guest \(guestBytes / max(guestPackets, 1)) B/packet")
        #expect(hostBytes > 90 << 20 && hostBytes / max(hostPackets, 1) > 4000, "guest → host did not use large sends")
        #expect(guestBytes > 90 << 20 && guestBytes / max(guestPackets, 1) > 4000, "host → guest did not use coalescing: \(report.tail)")
    }

    @Test func hostLinkDownAndUpReachTheGuest() async throws {
        let ns = try NetworkNamespace("keelnet2")
        try ns.addTap("ktap0", address: "10.77.0.1/24")
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.launcher = ns.launcher
        boot.keelOptions = ["--net", "tap=ktap0"]
        boot.script = """
            ip link set eth0 up
            wait_carrier() { i=0; while [ "$(cat /sys/class/net/eth0/carrier)" != "$1" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done; cat /sys/class/net/eth0/carrier; }
            echo "KEEL-GUEST carrier_initial=$(wait_carrier 1)"
            echo "KEEL-GUEST host_link_down_please"
            echo "KEEL-GUEST carrier_after_down=$(wait_carrier 0)"
            echo "KEEL-GUEST host_link_up_please"
            echo "KEEL-GUEST carrier_after_up=$(wait_carrier 1)"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300), onLine: [
            ("KEEL-GUEST host_link_down_please", { _ = try? ns.run(["ip", "link", "set", "ktap0", "down"]) }),
            ("KEEL-GUEST host_link_up_please", { _ = try? ns.run(["ip", "link", "set", "ktap0", "up"]) }),
        ])
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.int("carrier_initial") == 1, "\(report.tail)")
        #expect(report.int("carrier_after_down") == 0, "\(report.tail)")
        #expect(report.int("carrier_after_up") == 1, "\(report.tail)")
    }

    @Test func twoAdaptersOnOneVM() async throws {
        let ns = try NetworkNamespace("keelnet3")
        try ns.addTap("ktap0", address: "10.77.0.1/24")
        try ns.addTap("ktap1", address: "10.78.0.1/24")
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.launcher = ns.launcher
        boot.keelOptions = ["--net", "tap=ktap0", "--net", "tap=ktap1"]
        boot.script = """
            ip addr add 10.77.0.2/24 dev eth0 && ip link set eth0 up
            ip addr add 10.78.0.2/24 dev eth1 && ip link set eth1 up
            sleep 1
            echo "KEEL-GUEST ping0=$(ping -c 5 -A -W 5 10.77.0.1 | sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p')"
            echo "KEEL-GUEST ping1=$(ping -c 5 -A -W 5 10.78.0.1 | sed -n 's/.* \\([0-9]*\\) packets received.*/\\1/p')"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(report.exitStatus == 0, "\(report.tail)")
        let nics = report.list("net_devices")
        #expect(nics.count == 2 && Set(nics.map { String($0.suffix(17)) }).count == 2, "two adapters, two MACs: \(nics)")
        #expect(report.int("ping0") == 5, "\(report.tail)")
        #expect(report.int("ping1") == 5, "\(report.tail)")
    }
}
