import Testing
import KeelTestSupport

/// `keel run` boots the stock Debian kernels inside the rig; assertions are on what the guest
/// agent reports and on `keel run`'s exit status.
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil,
                Comment(rawValue: TestEnvironment.realGuestSkipReason ?? "")))
struct KeelBootTests {
    // One test per kernel rather than a parameterized test: guests inside the rig must boot one
    // at a time, and parameterized cases may run concurrently.
    @Test func keelBootsLinux61WithTwoCPUs() async throws { try await bootsWithTwoCPUs(.linux61) }
    @Test func keelBootsLinux612WithTwoCPUs() async throws { try await bootsWithTwoCPUs(.linux612) }

    func bootsWithTwoCPUs(_ version: GuestImage.Version) async throws {
        let image = GuestImage(version)
        var boot = GuestBoot(image: image)
        boot.memoryMiB = 384
        boot.cpus = 2
        boot.script = "echo script-ran-$((6*7)); dmesg | grep ttyS0"
        let report = try await bootGuest(boot, under: .keel, timeout: .seconds(300))
        #expect(!report.timedOut, "guest did not power off in time:\n\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.values["kernel"] == image.release)
        #expect(report.int("cpus") == 2, "\(report.tail)")
        let kib = try #require(report.int("memory_kib"), "\(report.tail)")
        #expect(kib <= 384 * 1024 && kib > 300 * 1024, "memory_kib=\(kib)")
        #expect(!report.lines(containing: "script-ran-42").isEmpty)
        #expect(report.values["script_rc"] == "0")
        // Linux found our 16550A (type 4 = PORT_16550A) and used it as console both ways.
        #expect(!report.lines(containing: "ttyS0 at I/O 0x3f8 (irq = 4, base_baud = 115200) is a 16550A").isEmpty,
                "\(report.tail)")
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
    }
}
