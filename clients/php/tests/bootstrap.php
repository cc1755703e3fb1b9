<?php

declare(strict_types=1);

// Composer's autoloader when `composer install` was run, else a PSR-4
// loader for WorkerPool\ => src/, so the tests need nothing but phpunit.
if (is_file(__DIR__ . '/../vendor/autoload.php')) {
    require __DIR__ . '/../vendor/autoload.php';
} else {
    spl_autoload_register(static function (string $class): void {
        if (str_starts_with($class, 'WorkerPool\\')) {
            $file = __DIR__ . '/../src/' . str_replace('\\', '/', substr($class, \strlen('WorkerPool\\'))) . '.php';
            if (is_file($file)) {
                require $file;
            }
        }
    });
}
