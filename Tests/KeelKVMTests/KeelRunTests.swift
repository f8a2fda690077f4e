import Foundation
import KeelSystem
import KeelTestSupport
import Synchronization
import Testing

/// `keel run` end to end on this machine's /dev/kvm, with tiny kernels that go through the real
/// boot path and devices: exit statuses, signals and bad input.
@Suite(.enabled(if: kvmSkipReason == nil, Comment(rawValue: kvmSkipReason ?? "")), .serialized)
struct KeelRunTests {
    struct Result {
        var status: Int32
        var stderr: String
    }

    static let keel = TestEnvironment.path(".build/debug/keel")

    func writeKernel(_ code: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "keel-tiny-\(UUID().uuidString).bzImage"
        try Data(TinyKernel.image(code: code)).write(to: URL(fileURLWithPath: path))
        return path
    }

    func keelRun(_ arguments: [String], signalAfter: (Int32, Double)? = nil) throws -> Result {
        let child = try ChildProcess(arguments: [Self.keel, "run"] + arguments)
        let finished = Mutex(false)
        // Guard against a hang: nothing here should take more than a few seconds.
        let watchdog = try NamedThread(name: "keel-run-watchdog") {
            if let (signo, delay) = signalAfter {
                usleep(UInt32(delay * 1_000_000))
                child.send(signal: signo)
            }
            for _ in 0..<300 where !finished.withLock({ $0 }) { usleep(100_000) }
            if !finished.withLock({ $0 }) { child.send(signal: SIGKILL) }
        }
        var output: [UInt8] = []
        while let chunk = try? child.output.read(maxCount: 4096), !chunk.isEmpty { output += chunk }
        let status = child.wait()
        finished.withLock { $0 = true }
        watchdog.join()
        return Result(status: status, stderr: String(decoding: output, as: UTF8.self))
    }

    func run(code: [UInt8], extra: [String] = [], signalAfter: (Int32, Double)? = nil) throws -> Result {
        let kernel = try writeKernel(code)
        defer { try? FileManager.default.removeItem(atPath: kernel) }
        return try keelRun(["--kernel", kernel, "--memory", "64"] + extra, signalAfter: signalAfter)
    }

    @Test func powerOffExitsZero() throws {
        let r = try run(code: TinyKernel.powerOff)
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func powerOffWithHiddenCPUFeatures() throws {
        let r = try run(code: TinyKernel.powerOff, extra: ["--cpu-features", "-erms,-fsrm,-avx"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func powerOffWithTwoCPUs() throws {
        let r = try run(code: TinyKernel.powerOff, extra: ["--cpus", "2"])
        #expect(r.status == 0, "\(r.stderr)")
    }

    @Test func resetExitsThree() throws {
        let r = try run(code: TinyKernel.reset)
        #expect(r.status == 3, "\(r.stderr)")
    }

    @Test func panicExitsFour() throws {
        let r = try run(code: TinyKernel.panic)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("panicked"))
    }

    @Test func tripleFaultExitsFourWithRegisters() throws {
        let r = try run(code: TinyKernel.tripleFault)
        #expect(r.status == 4, "\(r.stderr)")
        #expect(r.stderr.contains("rip="), "\(r.stderr)")
    }

    @Test func sigtermStopsTheVM() throws {
        let r = try run(code: TinyKernel.spin, signalAfter: (SIGTERM, 0.5))
        #expect(r.status == 128 + SIGTERM, "\(r.stderr)")
    }

    @Test func sigintStopsTheVMWithTwoCPUs() throws {
        let r = try run(code: TinyKernel.spin, extra: ["--cpus", "2"], signalAfter: (SIGINT, 0.5))
        #expect(r.status == 128 + SIGINT, "\(r.stderr)")
    }

    @Test func aDiskImageInUseByAnotherVMIsRefused() throws {
        let kernel = try writeKernel(TinyKernel.powerOff)
        let image = NSTemporaryDirectory() + "keel-locked-\(UUID().uuidString).img"
        defer {
            try? FileManager.default.removeItem(atPath: kernel)
            try? FileManager.default.removeItem(atPath: image)
        }
        try Data(repeating: 0xAB, count: 1 << 20).write(to: URL(fileURLWithPath: image))
        // Another process holds the lock a VM takes on its image.
        let holder = try ChildProcess(arguments: ["flock", "-x", image, "sleep", "20"])
        defer {
            holder.send(signal: SIGKILL)
            _ = holder.wait()
        }
        usleep(300_000)
        let r = try keelRun(["--kernel", kernel, "--memory", "64", "--disk", image])
        #expect(r.status == 1, "\(r.stderr)")
        #expect(r.stderr.contains("in use by another VM"), "\(r.stderr)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: image)) == Data(repeating: 0xAB, count: 1 << 20))
        // A read-only user of the same image is refused too while a writer holds it.
        let ro = try keelRun(["--kernel", kernel, "--memory", "64", "--disk", image + ",readonly"])
        #expect(ro.status == 1 && ro.stderr.contains("in use by another VM"), "\(ro.stderr)")
    }

    @Test(arguments: [
        (["--kernel", "/nonexistent/vmlinuz"], "no such file"),
        (["--kernel", "/etc/hostname"], "truncated"),
        (["--kernel", "/tmp"], "is a directory"),
        (["--kernel", "TINY", "--memory", "0"], "--memory 0"),
        (["--kernel", "TINY", "--memory", "99999999"], "--memory"),
        (["--kernel", "TINY", "--cpus", "0"], "--cpus 0"),
        (["--kernel", "TINY", "--cpus", "1000"], "--cpus 1000"),
        (["--kernel", "TINY", "--initrd", "/nonexistent"], "--initrd"),
        (["--kernel", "TINY", "--cmdline", String(repeating: "x", count: 5000)], "--cmdline"),
        (["--kernel", "TINY", "--memory", "lots"], "--memory lots: not a number"),
        (["--kernel", "TINY", "--frobnicate", "1"], "unknown option '--frobnicate'"),
        (["--kernel"], "--kernel needs a value"),
        (["--memory", "64"], "--kernel is required"),
        (["--kernel", "TINY", "--disk", "/nonexistent.img"], "--disk /nonexistent.img: no such file"),
        (["--kernel", "TINY", "--disk", "TINY,bogus"], "unknown option 'bogus'"),
        (["--kernel", "TINY", "--disk", "TINY,controller=4"], "controller must be 0 to 3"),
        (["--kernel", "TINY", "--disk", "TINY", "--disk", "TINY"], "given twice"),
        (["--kernel", "TINY", "--disk", "/tmp"], "is a directory"),
        (["--kernel", "TINY", "--shutdown-timeout", "-1"], "--shutdown-timeout -1"),
        (["--kernel", "TINY", "--rtc-offset", "99999999999"], "--rtc-offset 99999999999"),
        (["--kernel", "TINY", "--cpu-features", "+erms"], "--cpu-features +erms: '+erms': only hiding"),
        (["--kernel", "TINY", "--cpu-features", "-sse9"], "--cpu-features -sse9: 'sse9': unknown feature"),
    ])
    func badInputGetsOneLineErrorAndStatusTwo(arguments: [String], mentions: String) throws {
        let kernel = try writeKernel(TinyKernel.powerOff)
        defer { try? FileManager.default.removeItem(atPath: kernel) }
        let r = try keelRun(arguments.map { $0 == "TINY" ? kernel : $0.replacingOccurrences(of: "TINY", with: kernel) })
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }
}
