# CGNet (Wu et al., IEEE TIP 2021) from MMSegmentation's zoo at reduced width and depth
# (channels 16/32/64, 2 + 6 context-guided blocks instead of 32/64/128 and 3 + 21), for the
# SYNTHETIC benchmark's 7 classes at 128x128. Trained by `frugalbench train` from random init.
_base_ = ['mmseg::_base_/models/cgnet.py']

norm_cfg = dict(type='BN', eps=1e-03, requires_grad=True)
num_classes = 7
crop_size = (128, 128)

model = dict(
    data_preprocessor=dict(size=crop_size),
    backbone=dict(norm_cfg=norm_cfg, num_channels=(16, 32, 64), num_blocks=(2, 6)),
    decode_head=dict(in_channels=128, channels=128, num_classes=num_classes, norm_cfg=norm_cfg,
                     ignore_index=255,
                     loss_decode=dict(_delete_=True, type='CrossEntropyLoss', use_sigmoid=False,
                                      loss_weight=1.0, avg_non_ignore=True)),
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train` (the harness owns the data pipeline and the budget).
train_schedule = dict(
    iters=300, batch_size=8, crop_size=crop_size,
    optimizer=dict(type='AdamW', lr=4e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, num_workers=0, checkpoint_interval=100)
