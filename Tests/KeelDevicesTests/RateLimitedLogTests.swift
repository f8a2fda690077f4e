import Testing
@testable import KeelDevices

@Suite struct RateLimitedLogTests {
    private func make(limit: Int = 3) -> (RateLimitedLog, Recorder<String>, ManualClock<Duration>) {
        let lines = Recorder<String>()
        let clock = ManualClock<Duration>(.zero)
        let log = RateLimitedLog(limit: limit, interval: .seconds(10), clock: { clock.now }, sink: lines.sink)
        return (log, lines, clock)
    }

    @Test func limitsAndReportsSuppressed() {
        let (log, lines, clock) = make()
        for i in 0..<10 { log.log("m\(i)") }
        #expect(lines.all == ["m0", "m1", "m2"])
        #expect(log.totalSuppressed == 7)
        clock.now = .seconds(9)
        #expect(log.log("still suppressed") == false)
        clock.now = .seconds(10)
        #expect(log.log("next"))
        #expect(lines.all.last == "next (8 suppressed)")
        #expect(log.log("after"))
        #expect(lines.all.last == "after")
    }

    @Test func suppressedMessagesAreNotFormatted() {
        let (log, _, _) = make(limit: 1)
        log.log("first")
        var evaluated = false
        log.log({ evaluated = true; return "second" }())
        #expect(evaluated == false)
    }

    @Test func flushSuppressed() {
        let (log, lines, _) = make(limit: 1)
        log.flushSuppressed()
        #expect(lines.all.isEmpty)
        log.log("a")
        log.log("b")
        log.log("c")
        log.flushSuppressed()
        #expect(lines.all == ["a", "(2 suppressed)"])
    }

    @Test func concurrentUse() async {
        let lines = Recorder<String>()
        let log = RateLimitedLog(limit: 5, interval: .seconds(3600), sink: lines.sink)
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask { for i in 0..<100 { log.log("\(t).\(i)") } }
            }
        }
        #expect(lines.all.count == 5)
        #expect(log.totalSuppressed == 795)
    }
}
