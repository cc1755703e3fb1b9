<?php
// client.php runs the tasks of tasks.json through the PHP client
// (clients/php) and prints each result the moment its task finishes, while
// slower tasks still run:
//
//   php client.php
//
// It finds workerpool on PATH, or at $WORKERPOOL when that is set.

declare(strict_types=1);

require __DIR__ . '/../clients/php/src/WorkerPoolException.php';
require __DIR__ . '/../clients/php/src/Run.php';
require __DIR__ . '/../clients/php/src/WorkerPool.php';

use WorkerPool\WorkerPool;

$pool = new WorkerPool(getenv('WORKERPOOL') ?: null);
chdir(__DIR__); // the tasks run worker.php from here
$tasks = json_decode(file_get_contents('tasks.json'), true, flags: JSON_THROW_ON_ERROR);

$start = microtime(true);
foreach ($pool->run($tasks, ['threads' => 4]) as $r) {
    $out = json_decode($r['result_body'], true);
    printf("%6.0f ms  %-6s exit %d  %s\n",
        (microtime(true) - $start) * 1000,
        $r['identifier'],
        $r['exit_code'],
        $out['greeting'] ?? trim($r['error'] ?? $r['result_body']));
}
printf("pool exit status %d (1: a task failed, as frank does on purpose)\n", $pool->exitStatus());
