import Testing
import KeelTestSupport

/// The test platform itself: QEMU (the peer VMM) boots both default guests inside the rig and
/// the harness reads the agent's report.
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil,
                Comment(rawValue: TestEnvironment.realGuestSkipReason ?? "")))
struct QEMUBootTests {
    // One test per kernel: guests inside the rig must boot one at a time.
    @Test func qemuBootsLinux61() async throws { try await boots(.linux61) }
    @Test func qemuBootsLinux612() async throws { try await boots(.linux612) }

    func boots(_ version: GuestImage.Version) async throws {
        let image = GuestImage(version)
        var boot = GuestBoot(image: image)
        boot.memoryMiB = 384
        boot.cpus = 2
        boot.script = "echo script-ran-$((6*7))"
        let report = try await bootGuest(boot, under: .qemu(machine: "pc"), timeout: .seconds(300))
        #expect(!report.timedOut, "guest did not power off in time:\n\(report.tail)")
        #expect(report.exitStatus == 0, "\(report.tail)")
        #expect(report.values["kernel"] == image.release)
        #expect(report.int("cpus") == 2)
        // MemTotal is RAM minus what the kernel keeps for itself: within 384 MiB and not far below.
        let kib = try #require(report.int("memory_kib"), "\(report.tail)")
        #expect(kib <= 384 * 1024 && kib > 300 * 1024, "memory_kib=\(kib)")
        #expect(report.flags.contains("ready"))
        #expect(!report.lines(containing: "script-ran-42").isEmpty)
        #expect(report.values["script_rc"] == "0")
        // Outside Hyper-V the VMBus driver stack refuses to load; nothing else may fail.
        let failures = Set(report.list("module_failures"))
        #expect(failures.isSubset(of: hyperVModules), "module failures: \(failures)")
    }
}

/// Guest modules that only load on a Hyper-V (VMBus) host.
let hyperVModules: Set<String> = ["hv_vmbus", "hv_utils", "hv_storvsc", "hv_netvsc", "hv_balloon", "hv_sock", "hyperv_keyboard"]
