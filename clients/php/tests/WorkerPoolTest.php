<?php

declare(strict_types=1);

namespace WorkerPool\Tests;

use PHPUnit\Framework\TestCase;
use WorkerPool\WorkerPool;
use WorkerPool\WorkerPoolException;

/**
 * Runs the real workerpool binary: $WORKERPOOL_BIN, else the repository's
 * bin/workerpool (make build), else workerpool on PATH.
 *
 * WORKERPOOL_TEST_SPAWN_100K=1 makes the 100,000-task test run `true` for
 * every task; by default its tasks name a missing command, which the pool
 * answers without starting a process, so the test measures this client's
 * streaming rather than the machine's fork rate (about 350 processes per
 * second on a 2-core machine: 100,000 `true` take 5 minutes or more there).
 * WORKERPOOL_TEST_TIMINGS=1 prints the timings of the long tests on stderr.
 */
final class WorkerPoolTest extends TestCase
{
    private static function binaryPath(): ?string
    {
        $env = getenv('WORKERPOOL_BIN');
        if (\is_string($env) && $env !== '') {
            return $env;
        }
        $repo = \dirname(__DIR__, 3) . '/bin/workerpool';

        return is_file($repo) ? $repo : null;
    }

    private static function pool(): WorkerPool
    {
        return new WorkerPool(self::binaryPath());
    }

    private static function timing(string $what, float $start): void
    {
        if (getenv('WORKERPOOL_TEST_TIMINGS')) {
            fwrite(\STDERR, sprintf("\n%s: %.2f s\n", $what, microtime(true) - $start));
        }
    }

    /**
     * The processes whose parent is this PHP process (Linux): a pool left
     * running or left unreaped (a zombie) shows up here.
     *
     * @return list<string> "pid state comm" of each
     */
    private static function children(): array
    {
        $me = getmypid();
        $found = [];
        foreach (glob('/proc/[0-9]*/stat') ?: [] as $file) {
            $stat = @file_get_contents($file);
            if ($stat === false) {
                continue;
            }
            $close = strrpos($stat, ')');
            $fields = explode(' ', substr($stat, $close + 2));
            if ((int) ($fields[1] ?? 0) === $me) {
                $found[] = trim(substr($stat, 0, $close + 1)) . ' ' . $fields[0];
            }
        }

        return $found;
    }

    /** @return list<string> the processes whose command line holds $marker */
    private static function processesWith(string $marker): array
    {
        $proc = proc_open(['pgrep', '-a', '-f', $marker], [1 => ['pipe', 'w']], $pipes);
        self::assertIsResource($proc);
        $out = stream_get_contents($pipes[1]);
        fclose($pipes[1]);
        proc_close($proc);

        return array_values(array_filter(explode("\n", (string) $out)));
    }

    protected function tearDown(): void
    {
        if (is_dir('/proc/self')) {
            self::assertSame([], self::children(), 'no child process (pool or zombie) is left after a test');
        }
    }

    public function testOneHundredThousandTasksStream(): void
    {
        $n = 100_000;
        $spawn = (bool) getenv('WORKERPOOL_TEST_SPAWN_100K');
        $command = $spawn ? 'true' : 'workerpool-php-test-no-such-command';
        $pulled = 0;
        $tasks = (static function () use ($n, $command, &$pulled): \Generator {
            for ($i = 0; $i < $n; ++$i) {
                ++$pulled;
                yield ['identifier' => "t$i", 'command' => $command];
            }
        })();

        $pool = self::pool();
        $seen = str_repeat("\0", $n);
        $count = 0;
        $pulledAtFirst = null;
        $memoryBefore = memory_get_usage();
        $start = microtime(true);
        foreach ($pool->run($tasks, ['threads' => 0]) as $result) {
            $pulledAtFirst ??= $pulled;
            $i = (int) substr($result['identifier'], 1);
            self::assertSame("\0", $seen[$i], "identifier {$result['identifier']} comes back once");
            $seen[$i] = "\1";
            ++$count;
            if ($spawn) {
                self::assertSame(0, $result['exit_code']);
            } else {
                self::assertSame(127, $result['exit_code']);
                self::assertStringContainsString('not found', $result['error']);
            }
        }
        self::timing("$n tasks (" . ($spawn ? 'true' : 'command not found') . ')', $start);

        self::assertSame($n, $count);
        self::assertSame($n, substr_count($seen, "\1"));
        self::assertSame($spawn ? 0 : 1, $pool->exitStatus());
        // The first result came back long before the last task was written.
        self::assertLessThan($n / 2, $pulledAtFirst);
        // Neither the tasks nor the results were kept.
        self::assertLessThan(8 << 20, memory_get_usage() - $memoryBefore);
    }

    public function testEachTaskIsWrittenAsSoonAsItIsPulled(): void
    {
        // A slow source: before it gives the next task, it waits until the
        // pool has run the previous one (the task creates a file). Each task
        // must reach the pool as soon as it is pulled, not wait for more
        // tasks to fill a buffer, and results must come back while the
        // source is still giving tasks.
        $n = 8;
        $dir = sys_get_temp_dir() . '/wp-php-test-' . bin2hex(random_bytes(6));
        mkdir($dir);
        $log = [];
        $notRun = [];
        $tasks = (static function () use ($n, $dir, &$log, &$notRun): \Generator {
            for ($i = 0; $i < $n; ++$i) {
                if ($i > 0 && $notRun === []) {
                    // A loose bound: the pool starts a `touch` well within it.
                    $deadline = microtime(true) + 10.0;
                    while (!is_file("$dir/" . ($i - 1)) && microtime(true) < $deadline) {
                        usleep(5_000);
                    }
                    if (!is_file("$dir/" . ($i - 1))) {
                        $notRun[] = $i - 1;
                    }
                }
                $log[] = "task $i";
                yield ['identifier' => (string) $i, 'command' => 'touch', 'args' => ["$dir/$i"]];
            }
        })();
        try {
            $pool = self::pool();
            foreach ($pool->run($tasks, ['threads' => 1]) as $result) {
                self::assertSame(0, $result['exit_code'], json_encode($result));
                $log[] = "result {$result['identifier']}";
            }
            self::assertSame(0, $pool->exitStatus());
        } finally {
            array_map('unlink', glob("$dir/*") ?: []);
            rmdir($dir);
        }
        self::assertSame([], $notRun, 'each task ran before the next one was pulled: ' . implode(', ', $log));
        self::assertCount(2 * $n, $log);
        $firstResult = min(array_keys(preg_grep('/^result /', $log)));
        $lastTask = array_search('task ' . ($n - 1), $log, true);
        self::assertLessThan($lastTask, $firstResult, 'the first result came before the last task was pulled: ' . implode(', ', $log));
    }

    public function testRealProcesses(): void
    {
        $n = 1000;
        $tasks = (static function () use ($n): \Generator {
            for ($i = 0; $i < $n; ++$i) {
                yield ['identifier' => "p$i", 'command' => 'true'];
            }
        })();
        $pool = self::pool();
        $ids = [];
        $start = microtime(true);
        foreach ($pool->run($tasks, ['threads' => 0]) as $result) {
            self::assertSame(0, $result['exit_code'], json_encode($result));
            $ids[$result['identifier']] = ($ids[$result['identifier']] ?? 0) + 1;
        }
        self::timing("$n tasks of true", $start);
        self::assertCount($n, $ids);
        self::assertSame([1], array_values(array_unique($ids)));
        self::assertSame(0, $pool->exitStatus());
    }

    public function testOneMegabyteOutputs(): void
    {
        $n = 50;
        $size = 1 << 20;
        $tasks = [];
        for ($i = 0; $i < $n; ++$i) {
            $tasks[] = ['identifier' => "big$i", 'command' => 'sh', 'args' => ['-c', "head -c $size /dev/zero | tr '\\0' x"]];
        }
        $pool = self::pool();
        $count = 0;
        $start = microtime(true);
        foreach ($pool->run($tasks, ['threads' => 4]) as $result) {
            self::assertSame(0, $result['exit_code']);
            self::assertSame($size, \strlen($result['result_body']));
            self::assertSame($size, strspn($result['result_body'], 'x'));
            ++$count;
        }
        self::timing("$n tasks printing 1 MiB", $start);
        self::assertSame($n, $count);
        self::assertSame(0, $pool->exitStatus());
    }

    public function testOneMegabyteInputsAndOutputs(): void
    {
        // Task lines of 1 MiB each (stdin), echoed back by cat: the pool's
        // stdin and stdout are both full at once, often.
        $n = 30;
        $tasks = (static function () use ($n): \Generator {
            for ($i = 0; $i < $n; ++$i) {
                yield ['identifier' => "cat$i", 'command' => 'cat', 'stdin' => str_repeat(\chr(ord('a') + $i % 26), 1 << 20)];
            }
        })();
        $pool = self::pool();
        $count = 0;
        foreach ($pool->run($tasks, ['threads' => 4]) as $result) {
            $i = (int) substr($result['identifier'], 3);
            self::assertSame(0, $result['exit_code']);
            self::assertSame(1 << 20, strspn($result['result_body'], \chr(ord('a') + $i % 26)));
            self::assertSame(1 << 20, \strlen($result['result_body']));
            ++$count;
        }
        self::assertSame($n, $count);
    }

    public function testBreakStopsThePoolAndItsTasks(): void
    {
        $marker = 'wp-php-test-' . bin2hex(random_bytes(6));
        $dir = sys_get_temp_dir() . "/$marker";
        mkdir($dir);
        $sleep = "$dir/sleep-$marker"; // the marker is in each sleep's command line
        symlink(trim((string) shell_exec('command -v sleep')), $sleep);
        try {
            $tasks = [];
            for ($i = 0; $i < 3; ++$i) {
                $tasks[] = ['identifier' => "fast$i", 'command' => 'true'];
            }
            for ($i = 0; $i < 6; ++$i) {
                $tasks[] = ['identifier' => "slow$i", 'command' => $sleep, 'args' => ['30'], 'env' => ['WP_MARKER' => $marker]];
            }
            $pool = self::pool();
            $got = [];
            foreach ($pool->run($tasks, ['threads' => 9]) as $result) {
                $got[] = $result['identifier'];
                if (\count($got) === 3) {
                    // Make sure the slow tasks run before stopping them.
                    $deadline = microtime(true) + 20;
                    while (\count(self::processesWith($marker)) < 6 && microtime(true) < $deadline) {
                        usleep(50_000);
                    }
                    self::assertCount(6, self::processesWith($marker));
                    $start = microtime(true);
                    break;
                }
            }
            $stopped = microtime(true) - $start;
            self::timing('stop after break', $start);

            sort($got);
            self::assertSame(['fast0', 'fast1', 'fast2'], $got);
            self::assertLessThan(5.0, $stopped, 'the generator returns quickly after break');
            self::assertSame([], self::processesWith($marker), 'no sleep is left running');
            self::assertSame(143, $pool->exitStatus());
        } finally {
            @unlink($sleep);
            @rmdir($dir);
        }
    }

    public function testBreakOutOfAnEndlessTaskSource(): void
    {
        $pulled = 0;
        $tasks = (static function () use (&$pulled): \Generator {
            while (true) {
                ++$pulled;
                yield ['command' => 'true'];
            }
        })();
        $pool = self::pool();
        $count = 0;
        foreach ($pool->run($tasks, ['threads' => 2]) as $result) {
            self::assertSame(0, $result['exit_code']);
            if (++$count === 20) {
                break;
            }
        }
        self::assertSame(143, $pool->exitStatus());
        // Tasks were pulled as the pool took them: bounded by the pipe and
        // the pool's read-ahead, not by the source.
        self::assertLessThan(50_000, $pulled);
    }

    public function testExceptionInTheLoopStopsThePool(): void
    {
        $pool = self::pool();
        $tasks = [['identifier' => 'a', 'command' => 'true'], ['identifier' => 'b', 'command' => 'sleep', 'args' => ['30']]];
        $start = microtime(true);
        try {
            foreach ($pool->run($tasks, ['threads' => 2]) as $result) {
                throw new \RuntimeException('consumer failed on ' . $result['identifier']);
            }
            self::fail('no exception');
        } catch (\RuntimeException $e) {
            self::assertSame('consumer failed on a', $e->getMessage());
        }
        self::assertLessThan(10.0, microtime(true) - $start);
        self::assertSame(143, $pool->exitStatus());
    }

    public function testInvalidTaskIsAResult(): void
    {
        $pool = self::pool();
        $results = [];
        foreach ($pool->run([
            ['identifier' => 'typo', 'command' => 'echo', 'arg' => ['x']],
            ['identifier' => 'ok', 'command' => 'echo', 'args' => ['x']],
            ['x', 'y'], // a list: sent as {"0":"x","1":"y"}, an invalid task
            '{"identifier":"raw","command":"echo","args":["raw line"]}',
        ]) as $result) {
            $results[$result['identifier']] = $result;
        }
        self::assertCount(4, $results);
        self::assertSame(-1, $results['typo']['exit_code']);
        self::assertStringContainsString('unknown field "arg"', $results['typo']['error']);
        self::assertSame(-1, $results['3']['exit_code']);
        self::assertArrayHasKey('error', $results['3']);
        self::assertSame("x\n", $results['ok']['result_body']);
        self::assertSame("raw line\n", $results['raw']['result_body']);
        self::assertSame(1, $pool->exitStatus());
    }

    public function testUsageErrorThrowsWithThePoolsMessage(): void
    {
        $pool = self::pool();
        try {
            foreach ($pool->run([['command' => 'true']], ['threads' => -5]) as $result) {
                self::fail('no result expected: ' . json_encode($result));
            }
            self::fail('no exception');
        } catch (WorkerPoolException $e) {
            self::assertStringContainsString('status 2', $e->getMessage());
            self::assertStringContainsString('must be 0 or more, not -5', $e->getMessage());
            self::assertSame(2, $e->getExitStatus());
            self::assertStringContainsString('-5', $e->getPoolStderr());
        }
        self::assertSame(2, $pool->exitStatus());
    }

    public function testPoolThatDiesIsAnException(): void
    {
        // A "pool" that reads one task, says something on stderr and dies
        // with a status workerpool never uses for failed tasks.
        $fake = tempnam(sys_get_temp_dir(), 'fakepool');
        file_put_contents($fake, "#!/bin/sh\nread line\necho 'killed by the OOM killer' >&2\nexit 137\n");
        chmod($fake, 0755);
        try {
            $pool = new WorkerPool($fake);
            try {
                foreach ($pool->run([['command' => 'true']]) as $result) {
                    self::fail('no result expected: ' . json_encode($result));
                }
                self::fail('no exception');
            } catch (WorkerPoolException $e) {
                self::assertStringContainsString('status 137', $e->getMessage());
                self::assertStringContainsString('killed by the OOM killer', $e->getMessage());
                self::assertSame(137, $e->getExitStatus());
            }
            self::assertSame(137, $pool->exitStatus());
        } finally {
            unlink($fake);
        }
    }

    public function testSourceThatFailsAtOnceIsStatus143(): void
    {
        // The source throws before its first task, so the pool is stopped
        // (SIGTERM) moments after it was started: the status is 143 either
        // way, whether the pool had set up its signal handling or not.
        $pool = self::pool();
        $tasks = (static function (): \Generator {
            throw new \RuntimeException('no tasks today');
            yield; // makes this a generator: the throw happens when it is first iterated
        })();
        try {
            foreach ($pool->run($tasks) as $result) {
                self::fail('no result expected: ' . json_encode($result));
            }
            self::fail('no exception');
        } catch (\RuntimeException $e) {
            self::assertSame('no tasks today', $e->getMessage());
        }
        self::assertSame(143, $pool->exitStatus());

        // A pool that SIGTERM kills (it has no handler for it) is 143 too,
        // as a shell reports it, and a pool that exits 15 is 15.
        $fake = tempnam(sys_get_temp_dir(), 'fakepool');
        try {
            file_put_contents($fake, "#!/bin/sh\nexec sleep 30\n");
            chmod($fake, 0755);
            $pool = new WorkerPool($fake);
            try {
                foreach ($pool->run((static function (): \Generator {
                    throw new \RuntimeException('no tasks today');
                    yield;
                })()) as $result) {
                    self::fail('no result expected');
                }
                self::fail('no exception');
            } catch (\RuntimeException $e) {
                self::assertSame('no tasks today', $e->getMessage());
            }
            self::assertSame(143, $pool->exitStatus());

            file_put_contents($fake, "#!/bin/sh\nread line\nexit 15\n");
            try {
                foreach ($pool->run([['command' => 'true']]) as $result) {
                    self::fail('no result expected');
                }
                self::fail('no exception');
            } catch (WorkerPoolException $e) {
                self::assertSame(15, $e->getExitStatus());
            }
            self::assertSame(15, $pool->exitStatus());
        } finally {
            unlink($fake);
        }
    }

    public function testOverlappingRunsKeepTheirOwnStatus(): void
    {
        $pool = self::pool();
        $ok = [['identifier' => 'a1', 'command' => 'true'], ['identifier' => 'a2', 'command' => 'true']];
        $failing = [['identifier' => 'b1', 'command' => 'true'], ['identifier' => 'b2', 'command' => 'false']];

        // Each run has its own status; the pool's is the one of the run that
        // ended last.
        $outer = $pool->start($ok);
        $inner = $pool->start($failing);
        self::assertNull($outer->exitStatus());
        $seen = [];
        foreach ($outer as $a) {
            $seen[] = $a['identifier'];
            if (\count($seen) === 1) {
                foreach ($inner as $b) {
                    $seen[] = $b['identifier'];
                }
                self::assertSame(1, $inner->exitStatus());
                self::assertNull($outer->exitStatus(), 'the outer run is still going');
                self::assertSame(1, $pool->exitStatus());
            }
        }
        self::assertCount(4, $seen);
        self::assertSame(0, $outer->exitStatus());
        self::assertSame(1, $inner->exitStatus());
        self::assertSame(0, $pool->exitStatus());

        // The same with run(): the pool reports the run that ended last.
        foreach ($pool->run($failing) as $a) {
            foreach ($pool->run($ok) as $b) {
            }
            self::assertSame(0, $pool->exitStatus());
        }
        self::assertSame(1, $pool->exitStatus());

        // Leaving a loop over a Run stops its pool, as with run().
        $run = $pool->start([['identifier' => 'quick', 'command' => 'true'], ['command' => 'sleep', 'args' => ['30']]], ['threads' => 2]);
        foreach ($run as $result) {
            break;
        }
        self::assertSame(143, $run->exitStatus());
        self::assertSame(143, $pool->exitStatus());

        // A run is iterated once.
        $this->expectException(\LogicException::class);
        foreach ($outer as $a) {
        }
    }

    public function testOverlappingRunsKeepTheirOwnStderr(): void
    {
        // A "pool" that writes its first task line on stderr, one result,
        // and exits 3 once its stdin is closed.
        $fake = tempnam(sys_get_temp_dir(), 'fakepool');
        file_put_contents($fake, "#!/bin/sh\nread line\necho \"pool saw \$line\" >&2\n"
            . "echo '{\"identifier\":\"r\",\"exit_code\":0,\"result_body\":\"\",\"seq\":1}'\ncat >/dev/null\nexit 3\n");
        chmod($fake, 0755);
        try {
            // Two runs through run(): each exception has its own pool's stderr.
            $pool = new WorkerPool($fake);
            $messages = [];
            try {
                foreach ($pool->run([['identifier' => 'first', 'command' => 'true']]) as $r) {
                    try {
                        foreach ($pool->run([['identifier' => 'second', 'command' => 'true']]) as $r2) {
                        }
                    } catch (WorkerPoolException $e) {
                        $messages['second'] = $e->getMessage();
                    }
                }
            } catch (WorkerPoolException $e) {
                $messages['first'] = $e->getMessage();
            }
            self::assertStringContainsString('"first"', $messages['first']);
            self::assertStringNotContainsString('"second"', $messages['first']);
            self::assertStringNotContainsString('"first"', $messages['second']);
            self::assertStringContainsString('"first"', $pool->poolStderr());

            // The same with start(), whose runs say it themselves.
            $first = $pool->start([['identifier' => 'first', 'command' => 'true']]);
            $second = $pool->start([['identifier' => 'second', 'command' => 'true']]);
            $messages = [];
            try {
                foreach ($first as $r) {
                    try {
                        foreach ($second as $r2) {
                        }
                    } catch (WorkerPoolException $e) {
                        $messages['second'] = $e->getMessage();
                    }
                }
            } catch (WorkerPoolException $e) {
                $messages['first'] = $e->getMessage();
            }
            self::assertSame(['second', 'first'], array_keys($messages));
            self::assertStringContainsString('status 3', $messages['first']);
            self::assertStringContainsString('"first"', $messages['first']);
            self::assertStringNotContainsString('"second"', $messages['first']);
            self::assertStringContainsString('"second"', $messages['second']);
            self::assertStringNotContainsString('"first"', $messages['second']);
            self::assertStringContainsString('"first"', $first->poolStderr());
            self::assertStringNotContainsString('"second"', $first->poolStderr());
            self::assertSame(3, $first->exitStatus());
            self::assertSame(3, $second->exitStatus());
        } finally {
            unlink($fake);
        }
    }

    public function testLargeIntegersInMetaComeBackAsStrings(): void
    {
        $pool = self::pool();
        $results = iterator_to_array($pool->run([
            '{"identifier":"big","command":"true","meta":{"n":12345678901234567890,"small":42,"f":1.5}}',
        ]), false);
        self::assertSame(['n' => '12345678901234567890', 'small' => 42, 'f' => 1.5], $results[0]['meta']);
        self::assertSame(0, $results[0]['exit_code']);
    }

    public function testOptionsAreCheckedWhenRunIsCalled(): void
    {
        $pool = self::pool();
        foreach ([['thread' => 2], ['threads' => '2'], ['ordered' => 1], ['events' => 'no such function'], ['timeout' => []]] as $options) {
            try {
                $pool->run([], $options);
                self::fail('accepted ' . json_encode($options));
            } catch (\InvalidArgumentException $e) {
                self::assertNotSame('', $e->getMessage());
            }
        }
    }

    public function testMissingBinary(): void
    {
        $this->expectException(WorkerPoolException::class);
        $this->expectExceptionMessage('not found');
        new WorkerPool('/nonexistent/workerpool');
    }

    public function testBinaryOnPath(): void
    {
        $bin = self::binaryPath();
        if ($bin === null) {
            self::markTestSkipped('no workerpool binary outside PATH');
        }
        $old = getenv('PATH');
        putenv('PATH=/nonexistent:' . \dirname(realpath($bin)));
        try {
            self::assertSame(\dirname(realpath($bin)) . '/workerpool', (new WorkerPool())->binary());
            putenv('PATH=/nonexistent');
            $this->expectException(WorkerPoolException::class);
            $this->expectExceptionMessage('not found in PATH');
            new WorkerPool();
        } finally {
            putenv("PATH=$old");
        }
    }

    public function testEventsGoToTheCallback(): void
    {
        $events = [];
        $pool = self::pool();
        $results = [];
        $tasks = [
            ['identifier' => 'a', 'command' => 'true'],
            ['identifier' => 'b', 'command' => 'true'],
            ['identifier' => 'f', 'command' => 'sh', 'args' => ['-c', 'exit 4']],
        ];
        foreach ($pool->run($tasks, ['events' => function (array $e) use (&$events): void {
            $events[] = $e;
        }, 'retries' => 1]) as $result) {
            self::assertArrayNotHasKey('event', $result);
            $results[$result['identifier']] = $result;
        }
        $started = array_column(array_filter($events, fn ($e) => $e['event'] === 'started'), 'identifier');
        sort($started);
        self::assertSame(['a', 'b', 'f'], $started);
        $retrying = array_values(array_filter($events, fn ($e) => $e['event'] === 'retrying'));
        self::assertCount(1, $retrying);
        self::assertSame('f', $retrying[0]['identifier']);
        self::assertSame(2, $results['f']['attempts']);
        self::assertSame(4, $results['f']['exit_code']);
        self::assertSame(1, $pool->exitStatus());
    }

    public function testBinaryOutputRoundTrips(): void
    {
        $pool = self::pool();
        $results = iterator_to_array($pool->run([
            ['command' => 'printf', 'args' => ['\\377\\000']],
            ['command' => 'sh', 'args' => ['-c', "printf '\\376\\001' >&2"]],
        ], ['binary' => true]), false);
        usort($results, fn ($a, $b) => $a['seq'] <=> $b['seq']);
        self::assertSame("\xff\x00", $results[0]['result_body']);
        self::assertSame("\xfe\x01", $results[1]['stderr']);
        self::assertArrayNotHasKey('encoding', $results[0]);

        // Without it, the pool sends text: the byte that is not UTF-8 becomes U+FFFD.
        $text = iterator_to_array($pool->run([['command' => 'printf', 'args' => ['\\377\\000']]]), false);
        self::assertSame("\u{FFFD}\x00", $text[0]['result_body']);
    }

    public function testExitStatus(): void
    {
        $pool = self::pool();
        self::assertNull($pool->exitStatus());
        iterator_to_array($pool->run([['command' => 'true'], ['command' => 'true']]));
        self::assertSame(0, $pool->exitStatus());
        $results = iterator_to_array($pool->run([['command' => 'true'], ['command' => 'false']]), false);
        self::assertCount(2, $results);
        self::assertSame(1, $pool->exitStatus());
        iterator_to_array($pool->run([]));
        self::assertSame(0, $pool->exitStatus());
    }

    public function testTasksWithoutIdentifierAndOtherFields(): void
    {
        $pool = self::pool();
        $results = [];
        foreach ($pool->run([
            ['command' => 'sh', 'args' => ['-c', 'printf "%s %s %s" "$GREETING" "$(pwd)" "$(cat)"'], 'env' => ['GREETING' => 'héllo'], 'dir' => '/tmp', 'stdin' => 'in/put', 'meta' => ['k' => [1, 2]]],
            ['command' => 'true', 'env' => []],
        ]) as $result) {
            $results[$result['identifier']] = $result;
        }
        ksort($results);
        self::assertSame(['1', '2'], array_map('strval', array_keys($results)));
        self::assertSame('héllo /tmp in/put', $results[1]['result_body']);
        self::assertSame(['k' => [1, 2]], $results[1]['meta']);
        self::assertSame(0, $results[2]['exit_code']);
    }

    public function testOrderedTimeoutAndFailFast(): void
    {
        $pool = self::pool();
        $tasks = [
            ['identifier' => 'slow', 'command' => 'sleep', 'args' => ['0.5']],
            ['identifier' => 'fast', 'command' => 'true'],
        ];
        $ids = array_column(iterator_to_array($pool->run($tasks, ['threads' => 2, 'ordered' => true]), false), 'identifier');
        self::assertSame(['slow', 'fast'], $ids);

        $r = iterator_to_array($pool->run([['command' => 'sleep', 'args' => ['10']]], ['timeout' => 0.3]), false);
        self::assertSame(124, $r[0]['exit_code']);
        self::assertTrue($r[0]['timed_out']);

        $r = iterator_to_array($pool->run([['command' => 'sleep', 'args' => ['10']]], ['timeout' => '300ms']), false);
        self::assertTrue($r[0]['timed_out']);

        $tasks = (static function (): \Generator {
            yield ['identifier' => 'fails', 'command' => 'false'];
            for ($i = 0; $i < 10_000; ++$i) {
                yield ['identifier' => "later$i", 'command' => 'sleep', 'args' => ['0.2']];
            }
        })();
        $count = 0;
        foreach ($pool->run($tasks, ['threads' => 1, 'fail_fast' => true]) as $result) {
            ++$count;
        }
        self::assertSame(1, $pool->exitStatus());
        self::assertLessThan(10_001, $count, 'the pool stopped reading tasks');

        $r = iterator_to_array($pool->run([['command' => 'sh', 'args' => ['-c', 'echo 0123456789']]], ['max_output' => 4]), false);
        self::assertSame('0123', $r[0]['result_body']);
        self::assertTrue($r[0]['truncated']);
    }
}
