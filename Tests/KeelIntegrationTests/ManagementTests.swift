import Foundation
import KeelSystem
import KeelTestSupport
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// keeld and the `keel` management verbs end to end: real Linux guests inside the rig
/// (`ManagementTests`), and tiny kernels on this machine's /dev/kvm (`ManagementHostTests`).
/// Binaries come from `$KEEL_BIN_DIR`, else the build folder of this test bundle (its
/// `release/` sibling when it holds keeld, else the bundle's own folder).
enum ManagementHarness {
    static let binaryDirectory: String = {
        if let dir = ProcessInfo.processInfo.environment["KEEL_BIN_DIR"], !dir.isEmpty { return dir }
        let bundle = URL(fileURLWithPath: ProcessImage.currentExecutable).deletingLastPathComponent()
        let release = bundle.deletingLastPathComponent().appendingPathComponent("release")
        if FileManager.default.isExecutableFile(atPath: release.appendingPathComponent("keeld").path) { return release.path }
        return bundle.path
    }()

    static var keel: String { binaryDirectory + "/keel" }
    static var keeld: String { binaryDirectory + "/keeld" }

    static var kvmSkipReason: String? {
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return "SKIPPED: /dev/kvm cannot be opened on this machine" }
        guard FileManager.default.isExecutableFile(atPath: keeld) else { return "SKIPPED: \(keeld) not built" }
        return nil
    }

    static func seconds(since start: UInt64) -> Double { Double(HostClock.monotonicNanoseconds() - start) / 1e9 }
}

/// A keeld on a scratch state directory, its output drained to a log; everything it started
/// is killed (by PID) when the test ends.
final class KeeldProcess: @unchecked Sendable {
    let stateDirectory: String
    var socket: String { stateDirectory + "/keeld.sock" }
    private(set) var child: ChildProcess?
    private final class Output: Sendable { let bytes = Mutex<[UInt8]>([]) }
    private let output = Output()

    init() throws {
        // Short: worker sockets live under it.
        stateDirectory = "/tmp/keel-mgmt-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        try start()
    }

    func start() throws {
        let child = try ChildProcess(arguments: [ManagementHarness.keeld, "--state-dir", stateDirectory])
        self.child = child
        _ = try NamedThread(name: "keeld-drain") { [output] in
            while let chunk = try? child.output.read(maxCount: 4096), !chunk.isEmpty { output.bytes.withLock { $0 += chunk } }
        }
        for _ in 0..<200 {
            if (try? UnixSocket.connect(path: socket)) != nil { return }
            usleep(25_000)
        }
        throw ManagementTestError( "keeld did not listen on \(socket):\n\(log)")
    }

    var log: String { output.bytes.withLock { String(decoding: $0, as: UTF8.self) } }

    /// SIGKILL, as a crash would.
    func killHard() {
        child?.send(signal: SIGKILL)
        _ = child?.wait()
        child = nil
    }

    /// Runs `keel ARGS --socket S`; returns status and merged output.
    @discardableResult
    func keel(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try runHostCommand([ManagementHarness.keel] + arguments + ["--socket", socket])
    }

    /// `keel list --json` (or one VM) decoded loosely.
    func vms() throws -> [[String: Any]] {
        let r = try keel(["list", "--json"])
        guard r.status == 0, let data = r.output.data(using: .utf8),
              let list = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw ManagementTestError( "keel list --json failed: \(r.output)")
        }
        return list
    }

    func vm(_ name: String) throws -> [String: Any] {
        guard let vm = try vms().first(where: { $0["name"] as? String == name }) else {
            throw ManagementTestError( "no VM \(name)")
        }
        return vm
    }

    func state(_ name: String) throws -> String { try vm(name)["state"] as? String ?? "?" }

    /// Waits until `name` is in `state`.
    func wait(_ name: String, for state: String, timeout: Double) throws -> Bool {
        let start = HostClock.monotonicNanoseconds()
        while ManagementHarness.seconds(since: start) < timeout {
            if try self.state(name) == state { return true }
            usleep(100_000)
        }
        return false
    }

    /// Raw API request over the socket (no process start), for latency measurements.
    func request(_ method: String, _ path: String, body: String = "") throws -> (status: Int, body: String) {
        let connection = try UnixSocket.connect(path: socket)
        var head = "\(method) \(path) HTTP/1.1\r\nHost: keeld\r\nConnection: close\r\n"
        if !body.isEmpty || method == "POST" { head += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        try connection.sendAll(Array((head + "\r\n" + body).utf8))
        var bytes: [UInt8] = []
        while let chunk = try? connection.read(maxCount: 65_536), !chunk.isEmpty { bytes += chunk }
        let text = String(decoding: bytes, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, text.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n"))
    }

    /// Kills every worker this keeld started (PIDs from the state files) and keeld itself.
    func cleanUp() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: stateDirectory + "/vms")) ?? [] {
            let path = stateDirectory + "/vms/\(name)/state.json"
            if let data = FileManager.default.contents(atPath: path),
               let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let pid = object["workerPID"] as? Int, pid > 0,
               let cmdline = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), cmdline.contains(stateDirectory) {
                kill(pid_t(pid), SIGKILL)
            }
        }
        killHard()
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }

    /// Files in the state directory (to show a failed request left nothing behind).
    func stateFiles() -> [String] {
        (FileManager.default.enumerator(atPath: stateDirectory)?.allObjects as? [String] ?? [])
            .filter { !$0.hasSuffix("worker.log") && !$0.hasSuffix("events.jsonl") }.sorted()
    }

    /// Median and 95th percentile in milliseconds of `count` runs of `body`.
    static func measure(_ count: Int, _ body: () throws -> Void) rethrows -> (median: Double, p95: Double) {
        var samples: [Double] = []
        for _ in 0..<count {
            let start = HostClock.monotonicNanoseconds()
            try body()
            samples.append(ManagementHarness.seconds(since: start) * 1000)
        }
        samples.sort()
        return (samples[samples.count / 2], samples[min(samples.count - 1, Int(Double(samples.count) * 0.95))])
    }
}

struct ManagementTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func pid(of vm: [String: Any]) -> pid_t? { (vm["workerPID"] as? Int).map { pid_t($0) } }

func format(_ value: Double) -> String { String(format: "%.2f", value) }

/// The acceptance flow on tiny kernels on this machine's /dev/kvm: it needs no rig, so every
/// `swift test` checks the service's bookkeeping (the guest cannot shut down gracefully here).
@Suite(.serialized, .enabled(if: ManagementHarness.kvmSkipReason == nil, Comment(rawValue: ManagementHarness.kvmSkipReason ?? "")))
struct ManagementHostTests {
    func tinyKernel(_ code: [UInt8], in directory: String) throws -> String {
        let path = directory + "/tiny.bzImage"
        try Data(TinyKernel.image(code: code)).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func lifecycleCrashIsolationRestartAndBadRequests() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let kernel = try tinyKernel(TinyKernel.spin, in: keeld.stateDirectory)

        // Two VMs created and started through the CLI; list shows both running.
        for name in ["alpha", "beta"] {
            let created = try keeld.keel(["create", name, "--kernel", kernel, "--memory", "64"])
            #expect(created.status == 0, "\(created.output)")
            let started = try keeld.keel(["start", name])
            #expect(started.status == 0 && started.output.contains("is running"), "\(started.output)")
        }
        let table = try keeld.keel(["list"])
        #expect(table.status == 0)
        let rows = table.output.split(separator: "\n")
        #expect(rows.first?.hasPrefix("NAME") == true, "\(table.output)")
        #expect(rows.filter { $0.contains(" running ") }.count == 2, "\(table.output)")

        // Invalid requests: clear errors, exit statuses, and nothing changes.
        let before = (try keeld.vms().map { "\($0["name"]!)=\($0["state"]!)" }, keeld.stateFiles())
        let bad: [([String], Int32, String)] = [
            (["create", "alpha", "--kernel", kernel, "--memory", "64"], 4, "a VM named 'alpha' exists already"),
            (["create", "gamma", "--kernel", "/nonexistent/vmlinuz"], 2, "kernel /nonexistent/vmlinuz: no such file"),
            (["create", "gamma", "--kernel", kernel, "--cpus", "0"], 2, "cpus 0: must be between 1 and 64"),
            (["create", "gamma", "--kernel", kernel, "--memory", "1"], 2, "memoryMiB 1"),
            (["create", "no/slash", "--kernel", kernel], 2, "name 'no/slash'"),
            (["start", "nosuchvm"], 3, "no VM named 'nosuchvm'"),
            (["stop", "nosuchvm"], 3, "no VM named 'nosuchvm'"),
            (["rm", "alpha"], 4, "VM 'alpha' is running: cannot delete"),
            (["start", "alpha"], 4, "already running"),
            (["resume", "alpha"], 4, "cannot resume"),
        ]
        for (arguments, status, message) in bad {
            let r = try keeld.keel(arguments)
            #expect(r.status == status, "\(arguments): \(r.output)")
            #expect(r.output.contains("keel: error: ") && r.output.contains(message), "\(arguments): \(r.output)")
        }
        // Raw API: malformed and unknown input get 400s with the error shape.
        let unknownField = try keeld.request("POST", "/v1/vms", body: #"{"name":"x","kernel":"\#(kernel)","memory":64}"#)
        #expect(unknownField.status == 400 && unknownField.body.contains("unknown field 'memory'"), "\(unknownField)")
        #expect(try keeld.request("POST", "/v1/vms", body: "{not json").status == 400)
        #expect(try keeld.request("PUT", "/v1/vms/alpha").status == 405)
        #expect(try keeld.request("GET", "/v1/nothing").status == 404)
        #expect(try keeld.request("POST", "/v1/vms/alpha/stop?force=maybe").status == 400)
        let network = try keeld.request("POST", "/v1/vms", body: #"{"name":"n","kernel":"\#(kernel)","networks":[{}]}"#)
        #expect(network.status == 400, "a network without a TAP name: \(network)")
        let after = (try keeld.vms().map { "\($0["name"]!)=\($0["state"]!)" }, keeld.stateFiles())
        #expect(before.0 == after.0 && before.1 == after.1, "a failed request changed state:\n\(before)\n\(after)")

        // Pause and resume, console attach (the worker's ring + live stream; the spin kernel is silent).
        #expect(try keeld.keel(["pause", "alpha"]).output.contains("is paused"))
        #expect(try keeld.state("alpha") == "paused")
        #expect(try keeld.keel(["resume", "alpha"]).output.contains("is running"))
        let console = try keeld.request("POST", "/v1/vms/nosuchvm/console")
        #expect(console.status == 404)

        // kill -9 of one worker: its VM is crashed, the other keeps running, keeld is fine.
        let beta = try keeld.vm("beta")
        let betaPID = try #require(pid(of: beta))
        kill(betaPID, SIGKILL)
        #expect(try keeld.wait("beta", for: "crashed", timeout: 5))
        #expect(try keeld.state("alpha") == "running")
        let crashed = try keeld.vm("beta")
        #expect((crashed["lastExit"] as? [String: Any])?["reason"] as? String == "worker killed by signal 9", "\(crashed)")
        let events = try keeld.keel(["events", "beta"])
        #expect(events.output.contains("worker killed by signal 9"), "\(events.output)")

        // keeld killed and restarted: alpha's worker is found again; beta stays crashed.
        let alphaPID = try #require(pid(of: try keeld.vm("alpha")))
        keeld.killHard()
        #expect(DetachedProcess.isAlive(alphaPID), "the worker died with keeld")
        try keeld.start()
        #expect(try keeld.state("alpha") == "running")
        #expect(pid(of: try keeld.vm("alpha")) == alphaPID)
        #expect(try keeld.state("beta") == "crashed")

        // A worker that dies while keeld is down is reported honestly after the restart.
        try #require(try keeld.keel(["start", "beta"]).status == 0)
        let betaPID2 = try #require(pid(of: try keeld.vm("beta")))
        keeld.killHard()
        kill(betaPID2, SIGKILL)
        usleep(200_000)
        try keeld.start()
        #expect(try keeld.state("beta") == "crashed")
        #expect(((try keeld.vm("beta"))["lastExit"] as? [String: Any])?["reason"] as? String
                == "worker ended while keeld was not watching and left no exit record")
        #expect(try keeld.state("alpha") == "running")

        // Stop (no shutdown service in a tiny kernel: turned off at once), force stop, kill, delete.
        let stopped = try keeld.keel(["stop", "alpha"])
        #expect(stopped.status == 0 && stopped.output.contains("is stopped"), "\(stopped.output)")
        #expect(!DetachedProcess.isAlive(alphaPID))
        try #require(try keeld.keel(["start", "alpha"]).status == 0)
        #expect(try keeld.keel(["stop", "alpha", "--force"]).output.contains("is stopped: turned off"))
        try #require(try keeld.keel(["start", "alpha"]).status == 0)
        let killed = try keeld.keel(["kill", "alpha"])
        #expect(killed.status == 0 && killed.output.contains("is stopped: killed"), "\(killed.output)")
        #expect(try keeld.keel(["rm", "beta"]).status == 0)
        #expect(try keeld.vms().map { $0["name"] as? String } == ["alpha"])
        #expect(!FileManager.default.fileExists(atPath: keeld.stateDirectory + "/vms/beta"))
    }

    @Test func corruptStateFileIsReportedNotDropped() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let kernel = try tinyKernel(TinyKernel.spin, in: keeld.stateDirectory)
        try #require(try keeld.keel(["create", "good", "--kernel", kernel, "--memory", "64"]).status == 0)
        try #require(try keeld.keel(["create", "bad", "--kernel", kernel, "--memory", "64"]).status == 0)
        keeld.killHard()
        // A half-written configuration (as a crash in the middle of a non-atomic write would leave).
        let config = keeld.stateDirectory + "/vms/bad/vm.json"
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try String(text.prefix(40)).write(toFile: config, atomically: false, encoding: .utf8)
        try keeld.start()
        let bad = try keeld.vm("bad")
        #expect(bad["state"] as? String == "corrupt")
        #expect((bad["error"] as? String)?.contains("vm.json") == true, "\(bad)")
        #expect(keeld.log.contains("VM 'bad' is corrupt"), "\(keeld.log)")
        #expect(try keeld.state("good") == "stopped")
        let start = try keeld.keel(["start", "bad"])
        #expect(start.status == 4 && start.output.contains("corrupt"), "\(start.output)")
        #expect(try keeld.keel(["list"]).output.contains("corrupt"))
        #expect(try keeld.keel(["rm", "bad"]).status == 0)
    }

    /// Prints READY on COM1, then echoes every byte the serial port receives.
    static let echoKernel: [UInt8] = {
        var code: [UInt8] = [0x66, 0xBA, 0xF8, 0x03]                        // mov dx, 0x3F8
        for c in "READY\n".utf8 { code += [0xB0, c, 0xEE] }                 // mov al, c; out dx, al
        code += [0x66, 0xBA, 0xFD, 0x03, 0xEC, 0xA8, 0x01, 0x74, 0xF7,      // L: in LSR; test DR; jz L
                 0x66, 0xBA, 0xF8, 0x03, 0xEC, 0xEE, 0xEB, 0xEF]            // in RBR; out THR; jmp L
        return code
    }()

    /// `keel console`: the worker's kept output first, then live output; keys reach the guest;
    /// a second client sees the history; detaching leaves the VM running.
    @Test func consoleStreamsOutputAndInput() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let kernel = try tinyKernel(Self.echoKernel, in: keeld.stateDirectory)
        try #require(try keeld.keel(["create", "echo", "--kernel", kernel, "--memory", "64"]).status == 0)
        try #require(try keeld.keel(["start", "echo"]).status == 0)
        usleep(300_000)
        let console = try ChildProcess(arguments: [ManagementHarness.keel, "console", "echo", "--socket", keeld.socket])
        var seen = ""
        func readUntil(_ text: String) -> Bool {
            for _ in 0..<100 {
                if seen.contains(text) { return true }
                guard Poller.waitReadable([console.output.rawValue], timeoutMilliseconds: 100).count > 0,
                      let chunk = try? console.output.read(maxCount: 4096), !chunk.isEmpty else { continue }
                seen += String(decoding: chunk, as: UTF8.self)
            }
            return seen.contains(text)
        }
        #expect(readUntil("READY"), "\(seen)")
        try console.input.writeAll(Array("ping-42\n".utf8))
        #expect(readUntil("ping-42"), "\(seen)")
        console.send(signal: SIGKILL)
        _ = console.wait()
        #expect(try keeld.state("echo") == "running")
        // A second client gets the history from the worker's ring buffer.
        let again = try ChildProcess(arguments: [ManagementHarness.keel, "console", "echo", "--socket", keeld.socket])
        var history: [UInt8] = []
        for _ in 0..<50 where !String(decoding: history, as: UTF8.self).contains("ping-42") {
            if Poller.waitReadable([again.output.rawValue], timeoutMilliseconds: 100).count > 0,
               let chunk = try? again.output.read(maxCount: 4096) { history += chunk }
        }
        again.send(signal: SIGKILL)
        _ = again.wait()
        #expect(String(decoding: history, as: UTF8.self).contains("READY\nping-42"), "\(String(decoding: history, as: UTF8.self))")
        // The console ends when the VM stops.
        let third = try ChildProcess(arguments: [ManagementHarness.keel, "console", "echo", "--socket", keeld.socket])
        usleep(300_000)
        #expect(try keeld.keel(["stop", "echo", "--force"]).status == 0)
        while let chunk = try? third.output.read(maxCount: 4096), !chunk.isEmpty {}
        #expect(third.wait() == 0)
        let refused = try keeld.keel(["console", "echo"])
        #expect(refused.status == 4 && refused.output.contains("is stopped: cannot console"), "\(refused.output)")
    }

    /// A guest that panics (pvpanic): the VM is crashed, and the event log has the crash report.
    @Test func guestCrashIsRecorded() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let kernel = try tinyKernel(TinyKernel.panic, in: keeld.stateDirectory)
        try #require(try keeld.keel(["create", "panics", "--kernel", kernel, "--memory", "64"]).status == 0)
        let started = try keeld.keel(["start", "panics"])
        // The panic may come before or after the worker's control socket answers.
        #expect(started.status == 0 || started.output.contains("did not start"), "\(started.output)")
        #expect(try keeld.wait("panics", for: "crashed", timeout: 10))
        let vm = try keeld.vm("panics")
        #expect((vm["lastExit"] as? [String: Any])?["status"] as? Int == 4, "\(vm)")
        let events = try keeld.keel(["events", "panics"])
        #expect(events.output.contains("crash ") && events.output.contains("panic"), "\(events.output)")
        #expect(events.output.contains("guest crashed"), "\(events.output)")
    }

    /// API latency (list, create) and worker start time on this machine, printed.
    @Test func measureLatencies() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let kernel = try tinyKernel(TinyKernel.spin, in: keeld.stateDirectory)
        for i in 0..<10 {
            _ = try keeld.request("POST", "/v1/vms", body: #"{"name":"vm\#(i)","kernel":"\#(kernel)","memoryMiB":64}"#)
        }
        let list = try KeeldProcess.measure(200) { _ = try keeld.request("GET", "/v1/vms") }
        var n = 100
        let create = try KeeldProcess.measure(50) {
            n += 1
            let r = try keeld.request("POST", "/v1/vms", body: #"{"name":"vm\#(n)","kernel":"\#(kernel)","memoryMiB":64}"#)
            #expect(r.status == 201)
        }
        let cli = try KeeldProcess.measure(20) { _ = try keeld.keel(["list"]) }
        var workerStart: [Double] = []
        let start = try KeeldProcess.measure(10) {
            let r = try keeld.request("POST", "/v1/vms/vm0/start")
            if let data = r.body.data(using: .utf8), let vm = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
               let ms = vm["workerStartMilliseconds"] as? Double { workerStart.append(ms) }
            _ = try keeld.request("POST", "/v1/vms/vm0/kill")
            _ = try keeld.wait("vm0", for: "stopped", timeout: 5)
        }
        workerStart.sort()
        let place = TestEnvironment.insideRig ? "inside the rig (L1 under TCG)" : "this machine"
        print("MEASURE api (\(place), \(ManagementHarness.binaryDirectory)): GET /v1/vms with 10 VMs median \(format(list.median)) ms "
              + "p95 \(format(list.p95)) ms (n=200); POST /v1/vms median \(format(create.median)) ms p95 \(format(create.p95)) ms (n=50); "
              + "`keel list` process median \(format(cli.median)) ms (n=20)")
        print("MEASURE worker start (tiny kernel, 64 MiB, \(place)): spawn to control socket answering median "
              + "\(format(workerStart[workerStart.count / 2])) ms; POST start round trip median \(format(start.median)) ms incl. kill (n=10)")
        #expect(workerStart.count == 10)
    }
}

/// The acceptance test with real Linux guests inside the rig: two VMs through the CLI, crash
/// isolation, graceful stop through the Hyper-V shutdown service, keeld restart.
@Suite(.serialized, .enabled(if: TestEnvironment.realGuestSkipReason == nil && ManagementHarness.kvmSkipReason == nil,
                             Comment(rawValue: TestEnvironment.realGuestSkipReason ?? ManagementHarness.kvmSkipReason ?? "")))
struct ManagementTests {
    /// Keeps the guest running (the agent powers off after its script otherwise).
    static let keepAlive = "echo KEEL-GUEST waiting; while true; do sleep 1; done"

    @Test func twoGuestsCrashIsolationGracefulStopAndRestart() throws {
        let keeld = try KeeldProcess()
        defer { keeld.cleanUp() }
        let image = GuestImage(.linux612)
        let cmdline = "console=ttyS0 quiet panic=-1 keel.script=" + Data(Self.keepAlive.utf8).base64EncodedString()

        var startTimes: [Double] = []
        for name in ["web", "db"] {
            let created = try keeld.keel(["create", name, "--kernel", image.kernel, "--initrd", image.initrd, "--cmdline", cmdline,
                                          "--memory", "256", "--cpus", "1", "--shutdown-timeout", "120"])
            try #require(created.status == 0, "\(created.output)")
            let began = HostClock.monotonicNanoseconds()
            let started = try keeld.keel(["start", name])
            startTimes.append(ManagementHarness.seconds(since: began) * 1000)
            try #require(started.status == 0, "\(started.output)\n\(keeld.log)")
        }
        let listed = try keeld.keel(["list"])
        print(listed.output)
        #expect(listed.output.split(separator: "\n").filter { $0.contains(" running ") }.count == 2, "\(listed.output)")
        for name in ["web", "db"] {
            let ms = try keeld.vm(name)["workerStartMilliseconds"] as? Double ?? -1
            print("MEASURE rig worker start \(name): \(format(ms)) ms to control socket; `keel start` wall \(format(startTimes.removeFirst())) ms")
        }

        // Wait until both guests booted to their script: the console (ring + live) shows it.
        for name in ["web", "db"] {
            let seen = try consoleShows(keeld, name, "KEEL-GUEST waiting", timeout: 600)
            #expect(seen, "\(name) did not reach its script:\n\(keeld.log)")
        }
        // The integration services report in: heartbeat healthy, guest OS known (events too).
        let deadline = HostClock.monotonicNanoseconds() + 120_000_000_000
        while HostClock.monotonicNanoseconds() < deadline, try keeld.vm("db")["heartbeat"] as? String != "healthy" { usleep(500_000) }
        let db = try keeld.vm("db")
        #expect(db["heartbeat"] as? String == "healthy", "\(db)")
        #expect((db["guestOS"] as? String)?.contains("Linux") == true, "\(db)")

        let list = try KeeldProcess.measure(50) { _ = try keeld.request("GET", "/v1/vms") }
        print("MEASURE rig api GET /v1/vms median \(format(list.median)) ms p95 \(format(list.p95)) ms (n=50, 2 running VMs)")

        // kill -9 of web's worker: web crashed, db still running (and its guest still answers).
        let webPID = try #require(pid(of: try keeld.vm("web")))
        kill(webPID, SIGKILL)
        #expect(try keeld.wait("web", for: "crashed", timeout: 10))
        #expect(try keeld.state("db") == "running")
        #expect(try keeld.keel(["list"]).output.contains("worker killed by signal 9"))

        // keeld killed and restarted: db found running again, web still crashed.
        let dbPID = try #require(pid(of: db))
        keeld.killHard()
        try keeld.start()
        #expect(try keeld.state("db") == "running")
        #expect(pid(of: try keeld.vm("db")) == dbPID)
        #expect(try keeld.state("web") == "crashed")
        let afterRestart = try keeld.keel(["list"])
        print(afterRestart.output)

        // Graceful stop of db: the guest powers off through the shutdown service (status 0, not forced).
        let began = HostClock.monotonicNanoseconds()
        let stopped = try keeld.keel(["stop", "db"])
        print("MEASURE rig graceful stop: \(format(ManagementHarness.seconds(since: began))) s")
        #expect(stopped.status == 0 && stopped.output.contains("is stopped: guest powered off"), "\(stopped.output)\n\(keeld.log)")
        let exit = try keeld.vm("db")["lastExit"] as? [String: Any]
        #expect(exit?["status"] as? Int == 0, "\(String(describing: exit))")
        let events = try keeld.keel(["events", "db"])
        print(events.output)
        #expect(events.output.contains("heartbeat healthy") && events.output.contains("guest OS: Linux"), "\(events.output)")
        #expect(!DetachedProcess.isAlive(dbPID))
        let final = try keeld.keel(["list"])
        print(final.output)
        #expect(final.output.contains("db    stopped") || final.output.contains("db   stopped") || final.output.contains(" stopped "))
    }

    /// Attaches `keel console NAME` and waits for `text` (the worker replays its ring buffer first).
    func consoleShows(_ keeld: KeeldProcess, _ name: String, _ text: String, timeout: Double) throws -> Bool {
        let start = HostClock.monotonicNanoseconds()
        while ManagementHarness.seconds(since: start) < timeout {
            let child = try ChildProcess(arguments: [ManagementHarness.keel, "console", name, "--socket", keeld.socket])
            let found = Mutex(false)
            let reader = try NamedThread(name: "console-read") {
                var bytes: [UInt8] = []
                while let chunk = try? child.output.read(maxCount: 4096), !chunk.isEmpty {
                    bytes += chunk
                    if String(decoding: bytes, as: UTF8.self).contains(text) { found.withLock { $0 = true }; return }
                }
            }
            for _ in 0..<50 where !found.withLock({ $0 }) { usleep(100_000) }
            child.send(signal: SIGKILL)
            _ = child.wait()
            reader.join()
            if found.withLock({ $0 }) { return true }
        }
        return false
    }
}
