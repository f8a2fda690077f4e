import Testing
import Foundation
import KeelTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `keel run` boots the stock Debian kernels inside the rig; assertions are on what the guest
/// agent reports and on `keel run`'s exit status.
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil,
                Comment(rawValue: TestEnvironment.realGuestSkipReason ?? "")))
struct KeelBootTests {
    // One test per kernel rather than a parameterized test: guests inside the rig must boot one
    // at a time, and parameterized cases may run concurrently.
    @Test func keelBootsLinux61AsHyperVGuestWithTwoCPUs() async throws { try await bootsAsHyperVGuest(.linux61) }
    @Test func keelBootsLinux612AsHyperVGuestWithTwoCPUs() async throws { try await bootsAsHyperVGuest(.linux612) }

    static var hostHasERMS: Bool {
        (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?.split(separator: "\n").contains {
            $0.hasPrefix("flags") && $0.split(separator: " ").contains("erms")
        } ?? false
    }

    /// The guest starts with its RTC 400 days behind; time sync must correct it.
    static let rtcOffset = -400 * 86_400

    /// Boots with two vCPUs and a wrong RTC, and checks the whole Hyper-V bring-up from the
    /// guest's side: detection, VMBus version, offered devices, hv_utils bound to heartbeat,
    /// shutdown and time sync, and the clock set by time sync.
    func bootsAsHyperVGuest(_ version: GuestImage.Version) async throws {
        let image = GuestImage(version)
        var boot = GuestBoot(image: image)
        boot.memoryMiB = 384
        boot.cpus = 2
        boot.keelOptions = ["--rtc-offset", "\(Self.rtcOffset)", "--cpu-features", "-erms"]
        boot.script = """
            echo script-ran-$((6*7)); dmesg | grep ttyS0
            echo "KEEL-GUEST cpus_with_erms=$(grep -c '^flags.* erms' /proc/cpuinfo)"
            echo "KEEL-GUEST cpus_with_sse2=$(grep -c '^flags.* sse2' /proc/cpuinfo)"
            dmesg | grep -E 'Hypervisor detected|Vmbus version|IC version'
            for d in /sys/bus/vmbus/devices/*; do echo "vmbus-device $(cat $d/class_id) $(basename $(readlink $d/driver))"; done
            # print the time right after a second boundary, so the integer is exact to a few ms
            s=$(date +%s); while [ "$(date +%s)" = "$s" ]; do :; done; echo "KEEL-GUEST time=$(date +%s)"
            """
        let negotiated = ["heartbeat", "shutdown", "timesync"].map { "integration services: \($0) version" }
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300), watch: negotiated)
        #expect(!report.timedOut, "guest did not power off in time:\n\(report.tail)")
        // For the record (not asserted: rig timings only mean something as ratios).
        let bound = negotiated.allSatisfy { report.secondsToLine[$0] != nil }
            ? negotiated.compactMap { report.secondsToLine[$0] }.max() : nil
        print("MEASURE \(version): VM start to hv_utils bound (all three ICs negotiated): "
              + "\(bound.map { "\($0)" } ?? "never") s; to agent ready: \(report.secondsToReady ?? -1) s")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.values["kernel"] == image.release)
        #expect(report.int("cpus") == 2, "\(report.tail)")
        // --cpu-features -erms hid the feature on both vCPUs and left the others alone.
        #expect(report.int("cpus_with_erms") == 0, "\(report.tail)")
        #expect(report.int("cpus_with_sse2") == 2, "\(report.tail)")
        if !Self.hostHasERMS { print("NOTE: this host's CPU has no ERMS, so hiding it proves little here") }
        let kib = try #require(report.int("memory_kib"), "\(report.tail)")
        #expect(kib <= 384 * 1024 && kib > 300 * 1024, "memory_kib=\(kib)")
        #expect(!report.lines(containing: "script-ran-42").isEmpty)
        #expect(report.values["script_rc"] == "0")
        // Linux found our 16550A (type 4 = PORT_16550A) and used it as console both ways.
        #expect(!report.lines(containing: "ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A").isEmpty,
                "\(report.tail)")

        // Hyper-V detected (no KVM signature), the TSC page is the clock, VMBus 5.3 connected.
        #expect(report.values["hypervisor"] == "Microsoft_Hyper-V", "\(report.tail)")
        #expect(report.values["clocksource"] == "hyperv_clocksource_tsc_page", "\(report.tail)")
        #expect(!report.lines(containing: "Hypervisor detected: Microsoft Hyper-V").isEmpty, "\(report.tail)")
        #expect(!report.lines(containing: "hv_vmbus: Vmbus version:5.3").isEmpty, "\(report.tail)")
        // The three integration services are offered, bound to hv_utils and negotiated.
        let classes = ["57164f39-9115-4e78-ab55-382f3bd5422d", "0e0b6031-5213-4934-818b-38d90ced39db",
                       "9527e630-d0ae-497b-adce-e80ab0175caf"]
        #expect(report.list("vmbus_devices").sorted() == classes.sorted(), "\(report.tail)")
        for id in classes {
            #expect(!report.lines(containing: "vmbus-device {\(id)} hv_utils").isEmpty, "\(id) not bound:\n\(report.tail)")
        }
        for line in ["Heartbeat IC version 3.0", "Shutdown IC version 3.2", "TimeSync IC version 4.0"] {
            #expect(!report.lines(containing: "hv_utils: \(line)").isEmpty, "missing '\(line)':\n\(report.tail)")
        }
        #expect(!report.lines(containing: "guest heartbeat: healthy").isEmpty, "\(report.tail)")
        // Time sync moved the clock 400 days forward, to within a second of the host's.
        let guestTime = try #require(report.double("time"), "\(report.tail)")
        let hostTime = try #require(report.hostTimeAtKey["time"])
        #expect(abs(guestTime - hostTime) < 1.0, "guest clock \(guestTime), host \(hostTime)")
    }

    @Test func hostInitiatedShutdownOfLinux61() async throws { try await shutsDownOnSIGTERM(.linux61) }
    @Test func hostInitiatedShutdownOfLinux612() async throws { try await shutsDownOnSIGTERM(.linux612) }

    /// SIGTERM to `keel run` asks the guest to shut down through the Hyper-V shutdown service;
    /// the guest powers off cleanly (its init ran the orderly shutdown) and Keel exits with 0.
    func shutsDownOnSIGTERM(_ version: GuestImage.Version) async throws {
        var boot = GuestBoot(image: GuestImage(version))
        boot.keelOptions = ["--shutdown-timeout", "60"]
        boot.script = """
            while [ "$(ls /sys/bus/vmbus/drivers/hv_utils | grep -c -- -)" -lt 3 ]; do sleep 0.2; done
            sleep 1
            echo "KEEL-GUEST waiting_for_shutdown"
            while true; do sleep 1; done
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300),
                                         signalAfter: ("KEEL-GUEST waiting_for_shutdown", SIGTERM))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(!report.lines(containing: "asking the guest to shut down").isEmpty, "\(report.tail)")
        #expect(!report.lines(containing: "guest accepted the shutdown request").isEmpty, "\(report.tail)")
        // The guest's init got the orderly power-off from the kernel (not a forced stop).
        #expect(report.values["shutdown"] == "poweroff", "\(report.tail)")
    }

    /// `rmmod hv_vmbus` sends VMBus UNLOAD; loading it again reconnects (as a kexec'd kernel
    /// does) and every integration service comes back.
    @Test func vmbusUnloadAndReconnect() async throws {
        var boot = GuestBoot(image: GuestImage(.linux612))
        // hv_balloon can never be unloaded, and it would pin hv_vmbus.
        boot.commandLine = "keel.skip_modules=hv_balloon"
        boot.script = """
            bound() { ls /sys/bus/vmbus/drivers/hv_utils 2>/dev/null | grep -c -- -; }
            while [ "$(bound)" -lt 3 ]; do sleep 0.2; done
            for m in hyperv_keyboard hv_sock hv_netvsc hv_storvsc hv_utils hv_vmbus; do
                rmmod $m || echo "rmmod-failed $m"
            done
            echo "unloaded devices=$(ls /sys/bus/vmbus/devices 2>/dev/null | wc -l)"
            insmod /lib/modules/keel/hv_vmbus.ko && insmod /lib/modules/keel/hv_utils.ko
            i=0; while [ "$(bound)" -lt 3 ] && [ $i -lt 100 ]; do sleep 0.2; i=$((i + 1)); done
            echo "KEEL-GUEST rebound=$(bound)"
            echo "KEEL-GUEST heartbeat_negotiations=$(dmesg | grep -c 'Heartbeat IC version')"
            """
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.lines(containing: "rmmod-failed").isEmpty, "\(report.tail)")
        #expect(!report.lines(containing: "unloaded devices=0").isEmpty, "\(report.tail)")
        #expect(!report.lines(containing: "VMBus: guest unloaded VMBus").isEmpty, "\(report.tail)")
        #expect(report.lines(containing: "VMBus: guest connected with protocol 5.3").count == 2, "\(report.tail)")
        #expect(report.int("rebound") == 3, "\(report.tail)")
        #expect(report.int("heartbeat_negotiations") == 2, "\(report.tail)")
    }

    @Test func commandTypedOnStdinReachesTheGuestShell() async throws {
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.commandLine = "keel.shell=1"
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300),
                                         typeAfter: ("KEEL-GUEST ready", "echo typed-$((6*7))\npoweroff -f\n"))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(!report.lines(containing: "typed-42").isEmpty, "\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
    }

    @Test func guestRebootExitsWithStatusThree() async throws {
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.script = "reboot -f"
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(report.exitStatus == 3, "\(report.tail)")
    }

    @Test func kernelPanicExitsWithStatusFour() async throws {
        var boot = GuestBoot(image: GuestImage(.linux612))
        boot.script = "echo c > /proc/sysrq-trigger"
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(!report.timedOut, "\(report.tail)")
        #expect(report.exitStatus == 4, "\(report.tail)")
        #expect(!report.lines(containing: "Kernel panic").isEmpty, "\(report.tail)")
        // The panic text also reached Keel through the Hyper-V crash MSRs.
        #expect(!report.lines(containing: "guest crash report (Hyper-V crash MSRs)").isEmpty, "\(report.tail)")
    }
}
